/**
 * Kafka preflight. kafkajs connects to every broker the cluster advertises, not only to the bootstrap
 * address, so a policy that lists only the bootstrap endpoint breaks in a confusing way inside the
 * sandbox. Before a Kafka agent starts, the runner asks the cluster (from the host) which listeners
 * it advertises and refuses, naming each one, when one of them is outside the policy.
 */
import { AirlockError } from "../errors.js";
import type { Endpoint } from "../policy/endpoint.js";

export class KafkaPreflightError extends AirlockError {
  constructor(message: string, fix: string, cause?: unknown) {
    super("KAFKA_PREFLIGHT", message, { fix, cause });
  }
}

export interface AdvertisedBroker {
  nodeId: number;
  host: string;
  port: number;
}

export type DescribeCluster = (
  bootstrap: string[],
  sasl?: { username: string; password: string },
) => Promise<AdvertisedBroker[]>;

export const describeWithKafkajs: DescribeCluster = async (bootstrap, sasl) => {
  const { Kafka, logLevel } = await import("kafkajs");
  const kafka = new Kafka({
    clientId: "airlock-preflight",
    brokers: bootstrap,
    ...(sasl ? { sasl: { mechanism: "scram-sha-512" as const, ...sasl } } : {}),
    connectionTimeout: 3000,
    retry: { retries: 1, initialRetryTime: 200 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).brokers;
  } finally {
    await admin.disconnect();
  }
};

/**
 * A cluster's advertised listeners change rarely: what the real client saw in the last 30 s is
 * reused, so back-to-back runs do not each pay for a login and a metadata round trip. The runner
 * owns one (a describe given by a test is never cached).
 */
export class RecentKafkaClusters {
  private readonly described = new Map<string, { at: number; brokers: Promise<AdvertisedBroker[]> }>();

  describe(
    bootstrap: string[],
    describe: DescribeCluster,
    sasl?: { username: string; password: string },
  ): Promise<AdvertisedBroker[]> {
    if (describe !== describeWithKafkajs) return describe(bootstrap, sasl);
    const key = bootstrap.join(",");
    const hit = this.described.get(key);
    if (hit && Date.now() - hit.at < DESCRIBE_TTL_MS) return hit.brokers;
    const brokers = describe(bootstrap, sasl);
    this.described.set(key, { at: Date.now(), brokers });
    // The caller has the failure; a cluster that did not answer is asked again next time.
    brokers.catch(() => this.described.delete(key));
    return brokers;
  }
}

const DESCRIBE_TTL_MS = 30_000;

const normal = (host: string, port: number) => `${host === "127.0.0.1" ? "localhost" : host.toLowerCase()}:${port}`;

export interface KafkaPreflightRequest {
  /** KAFKA_BROKERS as the agent gets it. */
  kafkaBrokers: string;
  /** The policy's allowed endpoints, and its file for errors. */
  endpoints: Endpoint[];
  policySource: string;
  /** How the cluster is asked (default: kafkajs' admin client; tests pass their own). */
  describe?: DescribeCluster;
  sasl?: { username: string; password: string };
  /** The runner's recent answers (default: none kept). */
  recent?: RecentKafkaClusters;
}

export async function kafkaPreflight(req: KafkaPreflightRequest): Promise<AdvertisedBroker[]> {
  const { kafkaBrokers, endpoints, policySource, sasl } = req;
  const describe = req.describe ?? describeWithKafkajs;
  const bootstrap = kafkaBrokers
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean);
  const allowed = new Set(endpoints.map((e) => normal(e.host, e.port)));
  const notAllowed = bootstrap.filter((b) => {
    const i = b.lastIndexOf(":");
    return !allowed.has(normal(b.slice(0, i), Number(b.slice(i + 1))));
  });
  if (notAllowed.length) {
    throw new KafkaPreflightError(
      `KAFKA_BROKERS names ${notAllowed.join(", ")}, which ${policySource} does not allow`,
      `add ${notAllowed.join(", ")} to network.allowedEndpoints`,
    );
  }
  let brokers: AdvertisedBroker[];
  try {
    brokers = await (req.recent ?? new RecentKafkaClusters()).describe(bootstrap, describe, sasl);
  } catch (err) {
    throw new KafkaPreflightError(
      `cannot reach Kafka at ${bootstrap.join(", ")} from this host to read its advertised listeners: ${(err as Error).message}`,
      "start the broker (for the local default: npx airlock brokers start kafka), or check KAFKA_BROKERS",
      err,
    );
  }
  const outside = brokers.filter((b) => !allowed.has(normal(b.host, b.port)));
  if (outside.length) {
    const list = outside.map((b) => `${b.host}:${b.port}`).join(", ");
    throw new KafkaPreflightError(
      `the Kafka cluster advertises ${outside.map((b) => `broker ${b.nodeId} at ${b.host}:${b.port}`).join(", ")}, which ${policySource} does not allow; kafkajs connects to every advertised broker, so the agent would fail`,
      `add ${list} to network.allowedEndpoints`,
    );
  }
  return brokers;
}
