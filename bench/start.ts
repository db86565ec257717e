/**
 * Bench sections 1, 2 and 4: one agent's cold start (Node and Python) against `docker run --rm` of
 * the same image, and many agents at once (wall time, the runner's memory).
 */
import { join } from "node:path";
import { definePolicy, runAgent } from "../runner/index.js";
import { summarize } from "./stats.js";
import { addRow, type Row } from "./report.js";
import { AGENTS, log, plainDockerRun, REPS, settle, tmp } from "./common.js";

export async function coldStart(agentImage: string) {
  log("1. cold start");
  const gatedPolicy = definePolicy({ name: "bench-exit", network: { allowedEndpoints: ["localhost:6379"] } });
  const closedPolicy = definePolicy({ name: "bench-exit-closed" });
  const out = await tmp();
  const plain: number[] = [],
    gated: number[] = [],
    closed: number[] = [],
    firstGated: number[] = [],
    firstPlain: number[] = [];
  // Warm-up: images, network, module caches.
  await runAgent({
    agent: join(AGENTS, "exit.ts"),
    policy: gatedPolicy,
    outputDir: join(out, "warm"),
    workingDir: AGENTS,
  });
  await plainDockerRun(agentImage);
  for (let i = 0; i < REPS; i++) {
    await settle();
    plain.push((await plainDockerRun(agentImage)).ms);
    let t = performance.now();
    await runAgent({
      agent: join(AGENTS, "exit.ts"),
      policy: gatedPolicy,
      outputDir: join(out, `g${i}`),
      workingDir: AGENTS,
    });
    gated.push(performance.now() - t);
    await settle();
    t = performance.now();
    await runAgent({
      agent: join(AGENTS, "exit.ts"),
      policy: closedPolicy,
      outputDir: join(out, `c${i}`),
      workingDir: AGENTS,
    });
    closed.push(performance.now() - t);
    await settle();
    const t0 = Date.now();
    const r = await runAgent({
      agent: join(AGENTS, "first-line.ts"),
      policy: gatedPolicy,
      outputDir: join(out, `f${i}`),
      workingDir: AGENTS,
    });
    firstGated.push(Number(/FIRST_LINE (\d+)/.exec(r.stdout)![1]) - t0);
    await settle();
    const p0 = Date.now();
    const p = await plainDockerRun(agentImage, "console.log('FIRST_LINE ' + Date.now())");
    firstPlain.push(Number(/FIRST_LINE (\d+)/.exec(p.stdout)![1]) - p0);
  }
  addRow("1. cold start", "one agent that only exits, gated (one endpoint)", gated, plain, "ms", {
    op: "<=",
    value: 1.25,
  });
  addRow("1. cold start", "one agent that only exits, network disabled", closed, plain, "ms", {
    op: "<=",
    value: 1.25,
  });
  // The default runner keeps a gate namespace ready between runs: this run's container joins it (startup.how "ready gate").
  addRow(
    "1. cold start",
    "runAgent() → agent's first line (gated) vs docker run → first line",
    firstGated,
    firstPlain,
    "ms",
    { op: "<=", value: 1.1 },
  );
}

/** The same for a Python agent, against `docker run` of the same Python image. */
export async function pythonColdStart(pythonImage: string) {
  log("1. cold start (Python)");
  const gatedPolicy = definePolicy({ name: "bench-exit-py", network: { allowedEndpoints: ["localhost:6379"] } });
  const out = await tmp();
  const plain: number[] = [],
    gated: number[] = [],
    firstGated: number[] = [],
    firstPlain: number[] = [];
  await runAgent({ agent: join(AGENTS, "exit.py"), policy: gatedPolicy, outputDir: join(out, "warm") });
  await plainDockerRun(pythonImage, "0", "python3");
  for (let i = 0; i < REPS; i++) {
    await settle();
    plain.push((await plainDockerRun(pythonImage, "0", "python3")).ms);
    const t = performance.now();
    await runAgent({ agent: join(AGENTS, "exit.py"), policy: gatedPolicy, outputDir: join(out, `g${i}`) });
    gated.push(performance.now() - t);
    await settle();
    const t0 = Date.now();
    const r = await runAgent({
      agent: join(AGENTS, "first_line.py"),
      policy: gatedPolicy,
      outputDir: join(out, `f${i}`),
    });
    firstGated.push(Number(/FIRST_LINE (\d+)/.exec(r.stdout)![1]) - t0);
    await settle();
    const p0 = Date.now();
    const p = await plainDockerRun(
      pythonImage,
      "import time; print('FIRST_LINE %d' % (time.time() * 1000))",
      "python3",
    );
    firstPlain.push(Number(/FIRST_LINE (\d+)/.exec(p.stdout)![1]) - p0);
  }
  addRow("1. cold start", "one Python agent that only exits, gated (one endpoint)", gated, plain, "ms", {
    op: "<=",
    value: 1.25,
  });
  addRow(
    "1. cold start",
    "Python: runAgent() → agent's first line (gated) vs docker run → first line",
    firstGated,
    firstPlain,
    "ms",
  );
}

export async function many(agentImage: string, n: number, reps: number, section: string, target?: Row["target"]) {
  log(`${section}: ${n} agents at once`);
  const policy = definePolicy({ name: "bench-many", network: { allowedEndpoints: ["localhost:6379"] } });
  const out = await tmp();
  const plain: number[] = [],
    airlock: number[] = [],
    peakMiB: number[] = [];
  for (let i = 0; i < reps; i++) {
    await settle();
    let t = performance.now();
    await Promise.all(Array.from({ length: n }, () => plainDockerRun(agentImage)));
    plain.push(performance.now() - t);
    await settle();
    global.gc?.();
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    t = performance.now();
    const results = await Promise.all(
      Array.from({ length: n }, (_, k) =>
        runAgent({
          name: `m${k}`,
          agent: join(AGENTS, "exit.ts"),
          policy,
          outputDir: join(out, `r${i}-${k}`),
          workingDir: AGENTS,
        }),
      ),
    );
    airlock.push(performance.now() - t);
    clearInterval(sampler);
    const failed = results.filter((r) => r.status !== "succeeded");
    if (failed.length)
      throw new Error(`${failed.length} of ${n} agents did not succeed: ${failed[0]!.error ?? failed[0]!.stderr}`);
    peakMiB.push(peak / 1024 / 1024);
  }
  const a = summarize(airlock),
    b = summarize(plain);
  addRow(section, `${n} agent${n === 1 ? "" : "s"} at once: wall time`, airlock, plain, "ms", target);
  return { wall: a, plain: b, peakMiB: summarize(peakMiB) };
}
