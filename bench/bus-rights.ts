/**
 * Bench section 5: minting and revoking broker identities, what they add to a run, and the rights'
 * own cost on a pair (and the reference bridge the pairs are compared on).
 */
import { join } from "node:path";
import { execa } from "execa";
import { definePolicy, runAgent, type PolicyInput } from "../runner/index.js";
import { openBusRights } from "../runner/bus/rights.js";
import { ensureNetwork } from "../runner/backends/docker/network.js";
import { fmt, summarize } from "./stats.js";
import { addRow, rows } from "./report.js";
import { AGENTS, docker, freePort, log, REPS, settle, tmp } from "./common.js";
import { msgPerSecond, pair, prepare } from "./pairs.js";

/**
 * The rights' own cost: the same gated pair, once with an identity that has only the policy's
 * rights (ACL checks on every command), once with the broker's admin (none).
 */
export async function rightsReference(
  redisEnv: (run: string) => Record<string, string>,
  bus: PolicyInput["bus"],
  adminUrl: string,
): Promise<void> {
  const withRights = await prepare("bench-rights", "localhost:6379", redisEnv("x"), ["redis-sub", "redis-pub"], bus);
  const asAdmin = await prepare("bench-admin", "localhost:6379", { ...redisEnv("x"), REDIS_URL: adminUrl }, [
    "redis-sub",
    "redis-pub",
  ]);
  const rights: number[] = [],
    admin: number[] = [];
  const reps = Math.max(3, Math.min(REPS * 2 - 1, 9));
  for (let i = 0; i < reps; i++) {
    for (const r of i % 2 === 0 ? [true, false] : [false, true]) {
      const id = `${Date.now()}-${i}-rights-${r}`;
      const res = r
        ? await pair(withRights, true, "redis-sub", "redis-pub", redisEnv(id))
        : await pair(asAdmin, true, "redis-sub", "redis-pub", { ...redisEnv(id), REDIS_URL: adminUrl });
      (r ? rights : admin).push(msgPerSecond(res));
    }
  }
  addRow(
    "5. bus rights",
    "100,000 messages over Redis pub/sub through the gate: the run's own identity vs the broker's admin",
    rights,
    admin,
    "msg/s",
    { op: ">=", value: 0.97 },
  );
}

/** Minting and revoking one identity per broker, and what that adds to a run's start-to-exit time. */
export async function busRights(): Promise<void> {
  log("5. bus rights");
  const grants: [string, PolicyInput][] = [
    [
      "Redis",
      {
        name: "bench-mint-redis",
        network: { allowedEndpoints: ["localhost:6379"] },
        bus: { redis: { keys: { write: ["bench:{run}:*"] }, publish: ["bench:{run}"] } },
      },
    ],
    [
      "RabbitMQ",
      {
        name: "bench-mint-rabbitmq",
        network: { allowedEndpoints: ["localhost:5672"] },
        bus: { rabbitmq: { queues: { publish: ["bench.{run}"], consume: ["bench.{run}"] } } },
      },
    ],
    [
      "Kafka",
      {
        name: "bench-mint-kafka",
        network: { allowedEndpoints: ["localhost:9092"] },
        bus: { kafka: { topics: { produce: ["bench-{run}"], consume: ["bench-{run}"] }, groups: ["bench-{run}"] } },
      },
    ],
  ];
  const reps = Math.max(5, REPS * 2);
  for (const [label, input] of grants) {
    const policy = definePolicy(input);
    const mint: number[] = [],
      revoke: number[] = [];
    for (let i = 0; i < reps + 1; i++) {
      const runId = `bench-${i}-${Date.now()}`;
      let t = performance.now();
      const rights = await openBusRights({
        policy,
        runId,
        run: runId,
        expiresAt: Date.now() + 60_000,
        requireRights: true,
      });
      const m = performance.now() - t;
      t = performance.now();
      await rights.revoke();
      if (i > 0) mint.push(m), revoke.push(performance.now() - t); // the first pays for connections and the sweep
    }
    const s = (xs: number[]) => summarize(xs);
    rows.push({
      section: "5. bus rights",
      metric: `${label}: mint / revoke one identity`,
      airlock: fmt(s(mint), "ms", 1),
      baseline: fmt(s(revoke), "ms", 1),
      ratio: s(mint).median / Math.max(s(revoke).median, 1e-9),
      paired: "(baseline column: revoke)",
    });
  }
  const exit = join(AGENTS, "exit.ts");
  const out = await tmp();
  for (const [label, input] of grants) {
    const withRights = definePolicy(input);
    const without = definePolicy({ name: `${input.name}-none`, network: input.network! });
    await runAgent({ agent: exit, policy: withRights, outputDir: join(out, "warm") });
    const a: number[] = [],
      b: number[] = [];
    for (let i = 0; i < REPS; i++) {
      for (const r of i % 2 === 0 ? [true, false] : [false, true]) {
        await settle();
        const t = performance.now();
        const res = await runAgent({
          agent: exit,
          policy: r ? withRights : without,
          outputDir: join(out, `${label}-${i}-${r}`),
        });
        if (res.status !== "succeeded") throw new Error(`${label}: ${res.status} ${res.error ?? ""}`);
        (r ? a : b).push(performance.now() - t);
      }
    }
    addRow(
      "5. bus rights",
      `${label}: one agent's start to exit, with its own identity vs without bus rights (same gate)`,
      a,
      b,
      "ms",
    );
  }
}

/**
 * Where the time goes: the baseline above has no network namespace at all (host network). Here both
 * sides are containers on a bridge with the same limits, talking to a Redis this bench starts on the
 * host's loopback and on the gateway of a bridge of its own (the host accepts nothing from airlock's
 * bridge but what a running agent's policy allows): the gated one through its rules and the kernel
 * DNAT to localhost, the ungated one straight to its gateway. The ratio is the gate's own cost.
 */
export async function bridgeReference(redisEnv: (run: string) => Record<string, string>): Promise<void> {
  await ensureNetwork(docker);
  const refNet = await referenceBridge();
  const gateway = refNet.gateway;
  const port = await freePort(gateway);
  const server = execa(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      `127.0.0.1 ${gateway}`,
      "--protected-mode",
      "no",
      "--save",
      "",
      "--appendonly",
      "no",
    ],
    { reject: false },
  );
  try {
    for (
      let i = 0;
      (await execa("redis-cli", ["-p", String(port), "ping"], { reject: false })).stdout !== "PONG";
      i++
    ) {
      if (i > 50) throw new Error("the reference Redis did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    const env = (run: string) => ({ ...redisEnv(run), REDIS_URL: `redis://localhost:${port}` });
    const p = await prepare("bench-redis-bridge", `localhost:${port}`, env("x"), ["redis-sub", "redis-pub"]);
    const gated: number[] = [],
      open: number[] = [];
    const reps = Math.max(3, Math.min(REPS * 2 - 1, 9));
    for (let i = 0; i < reps; i++) {
      for (const g of i % 2 === 0 ? [true, false] : [false, true]) {
        const id = `${Date.now()}-${i}-bridge-${g}`;
        const r = await pair(p, g, "redis-sub", "redis-pub", env(id), {
          network: refNet.name,
          env: { REDIS_URL: `redis://${gateway}:${port}` },
        });
        (g ? gated : open).push(msgPerSecond(r));
      }
    }
    addRow(
      "3. through the gate",
      "100,000 messages over Redis pub/sub, both on airlock's bridge (the gate's own cost)",
      gated,
      open,
      "msg/s",
    );
  } finally {
    server.kill();
    await server;
  }
}

/** A bridge like airlock's (inter-container traffic off), for the ungated reference pair. */
export async function referenceBridge(): Promise<{ name: string; gateway: string }> {
  const name = "airlock-bench-reference";
  const inspect = async () =>
    ((await docker.getNetwork(name).inspect()).IPAM?.Config?.[0] as { Gateway?: string } | undefined)?.Gateway;
  let gateway = await inspect().catch(() => undefined);
  if (!gateway) {
    await docker.createNetwork({
      Name: name,
      Driver: "bridge",
      Labels: { "dev.airlock.managed": "true", "dev.airlock.kind": "bench-network" },
      Options: { "com.docker.network.bridge.enable_icc": "false", "com.docker.network.bridge.name": "airlockbench0" },
    });
    gateway = await inspect();
  }
  return { name, gateway: gateway! };
}
