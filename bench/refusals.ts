/**
 * Bench section 12: what keeping the run's refusals costs when nothing is refused — the live list in
 * the sandbox (/run/airlock, rewritten every 2 s from the gate's tables, the egress proxy and each
 * identity's broker record) against the same run with it off (AIRLOCK_LIVE_REFUSALS=0), interleaved
 * in one run: one agent's start to exit, and 100,000 messages over Redis pub/sub through the gate.
 * (The record read once after the run is on both sides: it is part of reading the brokers' refusals.)
 * And MQTT's refusals read off the connection (a forwarder with the tap, bus/mqtt-tap.ts) against the
 * broker's port through the kernel (AIRLOCK_WIRE_TAPS=0): QoS 1 pub/sub throughput and the round trip.
 */
import { join } from "node:path";
import { definePolicy, runAgent } from "../runner/index.js";
import { addRow } from "./report.js";
import { AGENTS, log, N_MESSAGES, REPS, settle, tmp } from "./common.js";
import { msgPerSecond, pair, prepare } from "./pairs.js";
import { percentile } from "./stats.js";

/** Runs `work` with a 0/1 setting on or off (the runner reads its settings per run). */
async function withSetting<T>(name: string, on: boolean, work: () => Promise<T>): Promise<T> {
  const before = process.env[name];
  process.env[name] = on ? "1" : "0";
  try {
    return await work();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

const withLive = <T>(on: boolean, work: () => Promise<T>) => withSetting("AIRLOCK_LIVE_REFUSALS", on, work);

export async function refusalsSection(): Promise<void> {
  log("12. refusals");
  const policy = definePolicy({
    name: "bench-refusals",
    network: { allowedEndpoints: ["localhost:6379"] },
    bus: { redis: { keys: { write: ["bench:{run}:*"] }, publish: ["bench:{run}"] } },
  });
  const exit = join(AGENTS, "exit.ts");
  const out = await tmp();
  await runAgent({ agent: exit, policy, outputDir: join(out, "warm") });
  const start = { on: [] as number[], off: [] as number[] };
  for (let i = 0; i < REPS * 2; i++) {
    for (const on of i % 2 === 0 ? [true, false] : [false, true]) {
      await settle();
      const t = performance.now();
      const r = await withLive(on, () => runAgent({ agent: exit, policy, outputDir: join(out, `${i}-${on}`) }));
      if (r.status !== "succeeded" || r.refusals.length)
        throw new Error(`bench-refusals: ${r.status} ${r.error ?? ""}`);
      (on ? start.on : start.off).push(performance.now() - t);
    }
  }
  addRow(
    "12. refusals",
    "one agent's start to exit (Redis identity, nothing refused): live list of refusals on vs off",
    start.on,
    start.off,
    "ms",
    { op: "<=", value: 1.05 },
  );

  const env = (run: string) => ({ BENCH_N: String(N_MESSAGES), BENCH_CHANNEL: `bench-${run}` });
  const redis = await prepare("bench-refusals-pair", "localhost:6379", env("x"), ["redis-sub", "redis-pub"], {
    redis: { publish: ["bench-*"], subscribe: ["bench-*"] },
  });
  const tput = { on: [] as number[], off: [] as number[] };
  const reps = Math.max(3, Math.min(REPS * 2 - 1, 9));
  for (let i = 0; i < reps; i++) {
    for (const on of i % 2 === 0 ? [true, false] : [false, true]) {
      const id = `${Date.now()}-${i}-live-${on}`;
      const r = await withLive(on, () => pair(redis, true, "redis-sub", "redis-pub", env(id)));
      (on ? tput.on : tput.off).push(msgPerSecond(r));
    }
  }
  addRow(
    "12. refusals",
    "100,000 messages over Redis pub/sub through the gate: live list of refusals on vs off",
    tput.on,
    tput.off,
    "msg/s",
    { op: ">=", value: 0.97 },
  );
  await mqttTapRows();
}

/** MQTT with its refusals read off the connection vs without (AIRLOCK_WIRE_TAPS=0), interleaved. */
async function mqttTapRows(): Promise<void> {
  const n = Math.min(N_MESSAGES, 20_000);
  const env = (id: string) => ({ BENCH_N: String(n), BENCH_TOPIC: `bench/${id}` });
  const mp = await prepare(
    "bench-mqtt-tap",
    "localhost:1883",
    env("x"),
    ["mqtt-sub", "mqtt-pub", "mqtt-replier", "mqtt-requester"],
    { mqtt: { publish: ["bench/*"], subscribe: ["bench/*"] } },
    ["mqtt@5.16.0"],
  );
  const tput = { on: [] as number[], off: [] as number[] };
  const rtt = { on: [] as number[], off: [] as number[] };
  const reps = Math.max(3, Math.min(REPS * 2 - 1, 9));
  for (let i = 0; i < reps; i++) {
    for (const on of i % 2 === 0 ? [true, false] : [false, true]) {
      const id = `${Date.now()}-${i}-tap-${on}`;
      await withSetting("AIRLOCK_WIRE_TAPS", on, async () => {
        (on ? tput.on : tput.off).push(msgPerSecond(await pair(mp, true, "mqtt-sub", "mqtt-pub", env(id)), n));
        const q = await pair(mp, true, "mqtt-replier", "mqtt-requester", { ...env(id), BENCH_N: "2000" });
        (on ? rtt.on : rtt.off).push(percentile(q.producer.rtts as number[], 50));
      });
    }
  }
  addRow(
    "12. refusals",
    `${n.toLocaleString("en")} messages over MQTT at QoS 1 through the gate: refusals read off the connection vs not (the kernel path)`,
    tput.on,
    tput.off,
    "msg/s",
    { op: ">=", value: 0.97 },
  );
  addRow(
    "12. refusals",
    "MQTT 5 request/response round trip (QoS 0), median: refusals read off the connection vs not",
    rtt.on,
    rtt.off,
    "µs",
  );
}
