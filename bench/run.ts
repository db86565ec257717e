/**
 * npm run bench: airlock against its baselines, measured side by side in one run on the same image.
 * Prints a table and writes bench/results.md. Needs the engine, Redis and Kafka (scripts/setup.sh).
 *
 *   1. cold start of one agent vs `docker run --rm IMAGE node -e 0`, and time to the agent's first line
 *   2. 20 agents at once vs 20 concurrent `docker run --rm`
 *   3. 100,000 messages through the gate (Redis pub/sub, Kafka) vs the same pair with unrestricted
 *      network; Redis request/reply round trips, gated and not
 *   4. the runner's memory per concurrent agent, and wall time for 1, 5, 20 and 50 agents
 *   5./6. bus rights, NATS and MQTT through the gate
 *   7. agents as Pods on a local Kubernetes cluster against plain Pods (bench/kubernetes.ts)
 *   8. warm starts from the warm pool, a cold start with nothing ready, 20 at once warm, and the
 *      memory a pooled sandbox holds (bench/warm.ts)
 *   9. writing into /output (a tmpfs volume, copied out) vs a bind-mounted folder (bench/output.ts)
 *  11. HTTPS by name through the egress proxy (SNI and terminated) vs the same client direct (bench/https.ts)
 *  12. the live list of refusals, on vs off: start to exit and pub/sub throughput (bench/refusals.ts)
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages } from "../runner/internal.js";
import { ensurePythonImage } from "../runner/languages/python/image.js";
import { packagePath } from "../runner/paths.js";
import { addFigureRow, addRow } from "./report.js";
import { docker, log, plainDockerRun, REPS, settle, tmp } from "./common.js";
import { coldStart, many, pythonColdStart } from "./start.js";
import { throughput } from "./throughput.js";
import { busRights } from "./bus-rights.js";
import { natsAndMqtt } from "./nats-mqtt.js";
import { table } from "./report.js";
import { kubernetesSection } from "./kubernetes.js";
import { warmSection } from "./warm.js";
import { outputSection } from "./output.js";
import { cliSection } from "./cli.js";
import { httpsSection } from "./https.js";
import { refusalsSection } from "./refusals.js";

async function main() {
  const started = Date.now();
  const images = await ensureImages(docker);
  const version = await docker.version();
  // BENCH_ONLY=3 (or "1,3") runs only those sections, for profiling; results.md is written by full runs only.
  const only = new Set((process.env.BENCH_ONLY ?? "1,2,3,4,5,6,7,8,9,10,11,12").split(","));
  if (only.has("1")) {
    await coldStart(images.agent);
    await pythonColdStart((await ensurePythonImage(docker, images)).id);
  }
  const twenty =
    only.has("2") || only.has("4")
      ? await many(images.agent, 20, Math.max(3, Math.min(REPS, 5)), "2. many at once", { op: "<=", value: 1.3 })
      : undefined;
  if (only.has("3")) await throughput();
  if (only.has("5")) await busRights();
  if (only.has("6")) await natsAndMqtt();
  const scaling: [number, Awaited<ReturnType<typeof many>>][] = [];
  if (only.has("4"))
    for (const n of [1, 5, 20, 50])
      scaling.push([n, n === 20 ? twenty! : await many(images.agent, n, 3, "4. scaling")]);
  if (only.has("10")) await cliSection({ addRow, log, reps: REPS });
  if (only.has("11")) await httpsSection(images.agent, { addRow, addFigureRow, reps: REPS });
  if (only.has("12")) await refusalsSection();
  if (only.has("9")) await outputSection(images.agent, { addRow, log, reps: REPS, tmp, settle });
  const warmLine = only.has("8")
    ? await warmSection(images.agent, { addRow, addFigureRow, log, reps: REPS, tmp, plainDockerRun, settle })
    : "";
  // Last: a local cluster's kubelet changes the host's netfilter while it runs.
  if (only.has("7")) await kubernetesSection(images, addRow, log, REPS, await tmp());
  // RSS never shrinks, so per-agent memory is the slope of the peak between the smallest and largest run.
  const [lo, hi] = [scaling[0], scaling[scaling.length - 1]];
  const slope = lo && hi && hi[0] > lo[0] ? (hi[1].peakMiB.median - lo[1].peakMiB.median) / (hi[0] - lo[0]) : 0;
  const mem = `${scaling.map(([n, s]) => `${n}: ${s.peakMiB.median.toFixed(0)} MiB`).join(", ")} peak RSS; ≈ ${Math.max(0, slope).toFixed(2)} MiB per added agent`;
  const growth = scaling
    .map(
      ([n, s]) => `${n}: ${(s.wall.median / 1000).toFixed(2)} s (docker run ${(s.plain.median / 1000).toFixed(2)} s)`,
    )
    .join(", ");
  const text = table(false);
  console.log(text);
  console.log(`\nrunner memory (median): ${mem}\nwall time by number of agents (median): ${growth}`);
  const md = [
    "# airlock benchmark",
    "",
    `Measured by \`npm run bench\` on ${new Date().toISOString()} — ${process.env.BENCH_MACHINE ?? "2 cores, 24 GiB"}, Docker ${version.Version}, Node ${process.version}, ${REPS} repetitions (${Math.max(3, Math.min(REPS * 3, 15))} for the throughput pairs, 3 for the slowest sections), baselines measured in the same run on the same image, interleaved with airlock's. "ratio" is airlock's median over the baseline's median (the target is checked on it); "paired ratios" are each repetition's airlock figure over the baseline figure measured right next to it, which shows how much of a difference is this machine's noise.`,
    "",
    table(true),
    "",
    `Runner memory by number of concurrent agents (median): ${mem}.`,
    "",
    `Wall time by number of concurrent agents (median): ${growth}.`,
    "",
    warmLine,
    "",
    `Total bench time ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    "",
  ].join("\n");
  if (only.size < 12) return;
  await mkdir(packagePath("bench"), { recursive: true });
  await writeFile(packagePath("bench", "results.md"), md);
  await rm(join(tmpdir(), "airlock-bench-out"), { recursive: true, force: true });
}

await main();
