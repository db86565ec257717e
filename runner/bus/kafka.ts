/**
 * Kafka rights: a SASL/SCRAM-SHA-512 user per run (kafka-scram.ts) with ACLs for exactly the
 * topics and consumer groups the policy lists (StandardAuthorizer, LITERAL or PREFIXED names),
 * through kafkajs' admin API as the runner's super user. Revoked by deleting the ACLs (checked on
 * every request, so an open producer is refused at once) and the credential (no new logins).
 */
import { z } from "zod";
import type { Endpoint } from "../policy/endpoint.js";
import { alterScramCredentials, KafkaAdminSession, type AclBinding } from "./kafka-scram.js";
import { BrokerLog, logDenials } from "./broker-log.js";
import { deniedFromKafkaLog } from "./log-denials.js";
import {
  adminEndpointsFrom,
  adminSourceFor,
  brokerLogPath,
  identityExpiry,
  type AdminSources,
  type BusKind,
  type GrantBase,
} from "./kind.js";
import { namePattern as pattern, resolvePattern, type NamePattern } from "./patterns.js";

export const kafkaGrant = z
  .strictObject({
    endpoint: z
      .string()
      .optional()
      .describe("The bootstrap broker as host:port, one of network.allowedEndpoints. Default: the one on port 9092."),
    env: z
      .string()
      .optional()
      .describe(
        "The variable that gets the bootstrap address (KAFKA_USERNAME, KAFKA_PASSWORD and KAFKA_SASL_MECHANISM carry the credentials). Default KAFKA_BROKERS.",
      ),
    topics: z
      .strictObject({
        produce: z
          .array(pattern)
          .optional()
          .describe("Topics the agent may write to: exact names or prefixes ending in *."),
        consume: z.array(pattern).optional().describe("Topics the agent may read."),
        create: z
          .boolean()
          .optional()
          .describe("It may also create the topics it may produce to or consume (default false)."),
      })
      .optional(),
    groups: z.array(pattern).optional().describe("Consumer groups the agent may join."),
  })
  .describe("Kafka: a SCRAM user of its own for each run, with ACLs.");

export type KafkaGrant = z.infer<typeof kafkaGrant> & GrantBase;

export interface KafkaAdmin {
  host: string;
  port: number;
  user: string;
  password: string;
  source: string;
  /** The broker's log (its kafka.authorizer.logger lines), where the runner may read it. */
  log?: string;
}

/** kafkajs' enums, by value (importing kafkajs is deferred until a Kafka grant is minted). */
const RESOURCE = { TOPIC: 2, GROUP: 3 } as const;
const PATTERN = { ANY: 1, LITERAL: 3, PREFIXED: 4 } as const;
const OPERATION = { ANY: 1, READ: 3, WRITE: 4, CREATE: 5, DESCRIBE: 8 } as const;
const PERMISSION = { ANY: 1, ALLOW: 3 } as const;

export type KafkaAcl = AclBinding;

/** The ACLs of a grant for one principal. */
export function kafkaAcls(grant: KafkaGrant, run: string, principal: string, agent?: string): KafkaAcl[] {
  const acl = (resourceType: number, p: NamePattern, operation: number): KafkaAcl => ({
    resourceType,
    resourceName: p.name,
    resourcePatternType: p.prefix ? PATTERN.PREFIXED : PATTERN.LITERAL,
    principal,
    host: "*",
    operation,
    permissionType: PERMISSION.ALLOW,
  });
  const resolve = (list: string[] | undefined) => (list ?? []).map((p) => resolvePattern(p, run, agent));
  const out: KafkaAcl[] = [];
  const create = grant.topics?.create === true;
  for (const p of resolve(grant.topics?.produce))
    out.push(
      acl(RESOURCE.TOPIC, p, OPERATION.WRITE),
      acl(RESOURCE.TOPIC, p, OPERATION.DESCRIBE),
      ...(create ? [acl(RESOURCE.TOPIC, p, OPERATION.CREATE)] : []),
    );
  for (const p of resolve(grant.topics?.consume))
    out.push(
      acl(RESOURCE.TOPIC, p, OPERATION.READ),
      acl(RESOURCE.TOPIC, p, OPERATION.DESCRIBE),
      ...(create ? [acl(RESOURCE.TOPIC, p, OPERATION.CREATE)] : []),
    );
  for (const p of resolve(grant.groups))
    out.push(acl(RESOURCE.GROUP, p, OPERATION.READ), acl(RESOURCE.GROUP, p, OPERATION.DESCRIBE));
  // The same ACL twice (a topic both produced and consumed) is one ACL.
  return [...new Map(out.map((a) => [JSON.stringify(a), a])).values()];
}

async function withAdmin<T>(admin: KafkaAdmin, work: (a: import("kafkajs").Admin) => Promise<T>): Promise<T> {
  const { Kafka, logLevel } = await import("kafkajs");
  const kafka = new Kafka({
    clientId: "airlock-runner",
    brokers: [`${admin.host}:${admin.port}`],
    sasl: { mechanism: "scram-sha-512", username: admin.user, password: admin.password },
    connectionTimeout: 5000,
    retry: { retries: 2, initialRetryTime: 100 },
    logLevel: logLevel.NOTHING,
  });
  const a = kafka.admin();
  await a.connect();
  try {
    return await work(a);
  } finally {
    await a.disconnect();
  }
}

export const kafkaKind: BusKind<KafkaGrant, KafkaAdmin> = {
  kind: "kafka",
  label: "Kafka",
  defaultPort: 9092,
  defaultEnv: "KAFKA_BROKERS",
  grantSchema: kafkaGrant,

  adminEndpoints: (sources) => adminEndpointsFrom(sources, "kafka", 9092),

  admin(endpoint: Endpoint, sources: AdminSources): KafkaAdmin | undefined {
    // kafka://USER:PASSWORD@HOST:PORT of a SCRAM-SHA-512 super user.
    const found = adminSourceFor(sources, "kafka", endpoint, 9092);
    if (!found) return undefined;
    const log = brokerLogPath(sources, "kafka", endpoint);
    if ("url" in found)
      return {
        host: found.url.hostname,
        port: Number(found.url.port || 9092),
        user: decodeURIComponent(found.url.username),
        password: decodeURIComponent(found.url.password),
        source: found.source,
        ...(log ? { log } : {}),
      };
    // Only once airlock's local broker runs with its SASL listener (airlock brokers start kafka).
    const l = found.local;
    return l.sasl === true
      ? {
          host: String(l.host),
          port: Number(l.port),
          user: String(l.user),
          password: String(l.password),
          source: found.source,
          ...(log ? { log } : {}),
        }
      : undefined;
  },

  anonymousEnv: (endpoint) => `${endpoint.host}:${endpoint.port}`,

  async mint(admin, { grant, identity, endpoint, envName }) {
    const principal = `User:${identity.name}`;
    const acls = kafkaAcls(grant, identity.run, principal, identity.agent);
    // Read from here on: what the authorizer refuses this identity, as its log says.
    const log = admin.log ? await BrokerLog.at(admin.log) : undefined;
    // The credential and the ACLs are independent records (ACLs may name a principal that cannot log
    // in yet): both go to the controller at once, over one admin login.
    const both = async (scram: { user: string; password?: string }, acl: (s: KafkaAdminSession) => Promise<void>) => {
      const session = await KafkaAdminSession.open(admin);
      try {
        const done = await Promise.allSettled([session.alterScram([scram]), acl(session)]);
        const failed = done.find((d): d is PromiseRejectedResult => d.status === "rejected");
        if (failed) throw failed.reason;
      } finally {
        session.close();
      }
    };
    // ACLs are checked on every request, so an open connection loses its rights at once.
    const revoke = () => both({ user: identity.name }, (s) => s.deleteAcls(acls));
    try {
      await both({ user: identity.name, password: identity.password }, (s) => s.createAcls(acls));
    } catch (err) {
      // Already failing (that error is thrown); what is left expires by its name and the sweep removes it.
      await revoke().catch(() => {});
      throw err;
    }
    return {
      env: {
        [envName]: `${endpoint.host}:${endpoint.port}`,
        KAFKA_USERNAME: identity.name,
        KAFKA_PASSWORD: identity.password,
        KAFKA_SASL_MECHANISM: "scram-sha-512",
      },
      ...(log
        ? { denied: logDenials(log, `User:${identity.name} `, (lines) => deniedFromKafkaLog(lines, identity.name)) }
        : {}),
      revoke,
    };
  },

  async sweep(admin, now) {
    const found = await withAdmin(admin, (a) =>
      a.describeAcls({
        resourceType: 1 /* ANY */,
        resourcePatternType: PATTERN.ANY,
        operation: OPERATION.ANY,
        permissionType: PERMISSION.ANY,
      } as never),
    );
    const stale = new Map<string, KafkaAcl[]>();
    for (const r of found.resources) {
      for (const acl of r.acls) {
        const name = acl.principal.replace(/^User:/, "");
        if ((identityExpiry(name) ?? Infinity) >= now) continue;
        stale.set(name, [
          ...(stale.get(name) ?? []),
          {
            resourceType: r.resourceType,
            resourceName: r.resourceName,
            resourcePatternType: r.resourcePatternType,
            principal: acl.principal,
            host: acl.host,
            operation: acl.operation,
            permissionType: acl.permissionType,
          },
        ]);
      }
    }
    if (stale.size === 0) return [];
    await withAdmin(admin, (a) => a.deleteAcls({ filters: [...stale.values()].flat() as never }));
    await alterScramCredentials(
      admin,
      [...stale.keys()].map((user) => ({ user })),
    );
    return [...stale.keys()];
  },
};
