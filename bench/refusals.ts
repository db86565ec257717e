/**
 * Bench section 12: what keeping the run's refusals costs when nothing is refused — the live list in
 * the sandbox (/run/airlock, rewritten every 2 s from the gate's tables, the egress proxy and each
 * identity's broker record) against the same run with it off (AIRLOCK_LIVE_REFUSALS=0), interleaved
 * in one run: one agent's start to exit, and 100,000 messages over Redis pub/sub through the gate.
 * (The record read once after the run is on both sides: it is part of reading the brokers' refusals.)
 */
import { join } from "node:path";
import { definePolicy, runAgent } from "../runner/index.js";
import { addRow } from "./report.js";
import { AGENTS, log, N_MESSAGES, REPS, settle, tmp } from "./common.js";
import { msgPerSecond, pair, prepare } from "./pairs.js";

/** Runs `work` with the live list on or off (the runner reads the setting per run). */
async function withLive<T>(on: boolean, work: () => Promise<T>): Promise<T> {
  const before = process.env.AIRLOCK_LIVE_REFUSALS;
  process.env.AIRLOCK_LIVE_REFUSALS = on ? "1" : "0";
  try {
    return await work();
  } finally {
    if (before === undefined) delete process.env.AIRLOCK_LIVE_REFUSALS;
    else process.env.AIRLOCK_LIVE_REFUSALS = before;
  }
}

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
}
