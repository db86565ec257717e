/**
 * Gated/ungated pairs: a consumer and a producer run through runAgent() with a policy, or with the
 * same bundle in the same image on an unrestricted network, and the figures they print.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { definePolicy, runAgent, type Policy, type PolicyInput } from "../runner/index.js";
import { ensureImages } from "../runner/internal.js";
import { ensureNpmPackagesImage } from "../runner/languages/node/packages-image.js";
import { bundleAgent } from "../runner/languages/node/bundle.js";
import { AGENTS, docker, N_MESSAGES, runUngated, settle, tmp } from "./common.js";

export interface Prepared {
  policy: Policy;
  image: string;
  bundles: Record<string, string>;
}

export async function prepare(
  name: string,
  endpoint: string,
  env: Record<string, string>,
  agents: string[],
  bus?: PolicyInput["bus"],
  packages = ["ioredis@5.9.2", "kafkajs@2.2.4"],
): Promise<Prepared> {
  const policy = definePolicy({
    name,
    network: { allowedEndpoints: [endpoint] },
    env: { allow: Object.keys(env) },
    ...(bus ? { bus } : {}),
    packages,
    timeoutSeconds: 300,
    resources: { memory: "1g", cpus: 2 },
  });
  const images = await ensureImages(docker);
  const { id: image } = await ensureNpmPackagesImage(
    docker,
    { tag: images.agent, id: images.ids.agent },
    policy.packages.npm,
  );
  const bundles: Record<string, string> = {};
  for (const a of agents) {
    const dir = await tmp();
    await bundleAgent(join(AGENTS, `${a}.ts`), policy, dir);
    bundles[a] = dir;
  }
  return { policy, image, bundles };
}

/** Messages per second from the producer's first send to the consumer's last message. */
export function msgPerSecond(
  r: { consumer: Record<string, unknown>; producer: Record<string, unknown> },
  n = N_MESSAGES,
): number {
  return (n / ((r.consumer.last as number) - (r.producer.started as number))) * 1000;
}

export function resultOf(lines: string[]): Record<string, number | number[]> {
  const line = lines.find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`no RESULT line in:\n${lines.slice(-20).join("\n")}`);
  return JSON.parse(line.slice(7));
}

/** Run a consumer (until it says READY) then a producer; gated through runAgent or ungated. */
export async function pair(
  p: Prepared,
  gated: boolean,
  consumer: string,
  producer: string,
  env: Record<string, string>,
  ungated: { network: string; env?: Record<string, string> } = { network: "host" },
) {
  // The previous pair's containers are still being removed in the background: not on this one's clock.
  await settle();
  const lines: Record<string, string[]> = { [consumer]: [], [producer]: [] };
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const run = (agent: string) => {
    const onLine = (l: string) => {
      lines[agent]!.push(l);
      if (l === "READY") ready();
    };
    if (!gated)
      return runUngated(
        p.image,
        p.bundles[agent]!,
        { ...env, ...ungated.env },
        onLine,
        p.policy.resources,
        ungated.network,
      );
    return runAgent({
      agent: join(AGENTS, `${agent}.ts`),
      policy: p.policy,
      env,
      outputDir: join(tmpdir(), "airlock-bench-out", agent),
      workingDir: AGENTS,
      onEvent: (e) => e.type === "output" && onLine(e.line),
    }).then((r) => {
      if (r.status !== "succeeded") throw new Error(`${agent}: ${r.status} ${r.error ?? ""} ${r.stderr.slice(-500)}`);
    });
  };
  const c = run(consumer);
  await isReady;
  const pr = run(producer);
  await Promise.all([c, pr]);
  return { consumer: resultOf(lines[consumer]!), producer: resultOf(lines[producer]!) };
}
