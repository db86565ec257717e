/**
 * Bench section 8: the warm pool, each figure beside plain `docker run --rm` of the same image in
 * the same run, interleaved:
 *
 *   - warm: runAgent() → the agent's first line from a pooled sandbox (p50 and p99)
 *   - cold with nothing ready (no pooled sandbox, no gate kept ready): a sandbox started for the run
 *   - 20 agents at once, each claiming a pooled sandbox, against 20 concurrent `docker run --rm`
 *   - the memory a pooled sandbox holds while it waits (the container's cgroup), beside an idle Node
 *     container of the same image, and what the runner holds per pooled sandbox
 */
import { join } from "node:path";
import { execa } from "execa";
import type Docker from "dockerode";
import { createRunner, definePolicy, type AgentResult, type Runner } from "../runner/index.js";
import { dockerClient } from "../runner/internal.js";
import { LABEL } from "../runner/labels.js";
import { NETWORK_NAME } from "../runner/backends/docker/network.js";
import { packagePath } from "../runner/paths.js";
import { waitUntil } from "../runner/util/wait-until.js";
import { percentile, summarize } from "./stats.js";

const AGENTS = packagePath("bench", "agents");
const SECTION = "8. warm pool";

type Target = {
  op: "<=" | ">=" | "<";
  value: number;
  absolute?: { of: "median" | "p99"; unit: string; actual: number };
};

export interface WarmDeps {
  addRow(section: string, metric: string, a: number[], b: number[], unit: string, target?: Target): void;
  addFigureRow(section: string, metric: string, a: number, b: number, unit: string, target?: Target): void;
  log(...a: unknown[]): void;
  reps: number;
  tmp(): Promise<string>;
  plainDockerRun(image: string, script?: string): Promise<{ ms: number; stdout: string }>;
  settle(): Promise<void>;
}

const policy = definePolicy({ name: "bench-warm", network: { allowedEndpoints: ["localhost:6379"] } });
const firstLine = (r: AgentResult, t0: number) => Number(/FIRST_LINE (\d+)/.exec(r.stdout)?.[1]) - t0;

/** Until the runner's pool has `count` sandboxes ready and is starting none. */
async function filled(runner: Runner, count: number): Promise<void> {
  await waitUntil(async () => (runner.warmPool?.readyCount() ?? 0) >= count, { timeoutMs: 180_000, intervalMs: 50 });
  await runner.warmPool?.idle();
}

/** `docker run --rm IMAGE node -e SCRIPT`, on the default bridge or on `network`. */
async function plainRun(image: string, script: string, network?: string): Promise<string> {
  const r = await execa("docker", [
    "run",
    "--rm",
    ...(network ? ["--network", network] : []),
    "--entrypoint",
    "node",
    image,
    "-e",
    script,
  ]);
  return r.stdout;
}

async function plainFirstLine(_deps: WarmDeps, image: string, network?: string): Promise<number> {
  const t0 = Date.now();
  const stdout = await plainRun(image, "console.log('FIRST_LINE ' + Date.now())", network);
  return Number(/FIRST_LINE (\d+)/.exec(stdout)![1]) - t0;
}

/** Returns a line for bench/results.md: what the runner itself holds per pooled sandbox. */
export async function warmSection(agentImage: string, deps: WarmDeps): Promise<string> {
  const out = await deps.tmp();
  const n = Math.max(20, deps.reps * 4);

  deps.log("8. warm pool: first line from a pooled sandbox");
  const warm = createRunner({ gatePoolSize: 0, pool: { size: 2 } });
  const warmFirst: number[] = [],
    plainFirst: number[] = [],
    modes = new Set<string>();
  await warm.runAgent({ agent: join(AGENTS, "first-line.ts"), policy, outputDir: join(out, "w-first") });
  for (let i = 0; i < n; i++) {
    await deps.settle();
    await filled(warm, 2);
    plainFirst.push(await plainFirstLine(deps, agentImage));
    await filled(warm, 2);
    const t0 = Date.now();
    const r = await warm.runAgent({ agent: join(AGENTS, "first-line.ts"), policy, outputDir: join(out, `w${i}`) });
    modes.add(r.startup?.how ?? "?");
    warmFirst.push(firstLine(r, t0));
  }
  if (modes.size !== 1 || !modes.has("pooled sandbox")) deps.log(`warm runs came from: ${[...modes].join(", ")}`);
  const p50 = summarize(warmFirst).median,
    p99 = percentile(warmFirst, 99);
  deps.addRow(
    SECTION,
    `warm: runAgent() → agent's first line, from a pooled sandbox (${n} runs)`,
    warmFirst,
    plainFirst,
    "ms",
    { op: "<", value: 50, absolute: { of: "median", unit: "ms", actual: p50 } },
  );
  deps.addFigureRow(
    SECTION,
    `warm: runAgent() → agent's first line, p99 (${n} runs)`,
    p99,
    percentile(plainFirst, 99),
    "ms",
    { op: "<", value: 100, absolute: { of: "p99", unit: "ms", actual: p99 } },
  );
  await warm.close();

  deps.log("8. warm pool: cold start with nothing ready");
  const bare = createRunner({ gatePoolSize: 0 });
  const coldFirst: number[] = [],
    coldPlain: number[] = [],
    coldPlainAirlockNet: number[] = [];
  await bare.runAgent({ agent: join(AGENTS, "first-line.ts"), policy, outputDir: join(out, "c-first") });
  for (let i = 0; i < deps.reps; i++) {
    await deps.settle();
    await bare.containersRemoved();
    coldPlain.push(await plainFirstLine(deps, agentImage));
    coldPlainAirlockNet.push(await plainFirstLine(deps, agentImage, NETWORK_NAME));
    const t0 = Date.now();
    const r = await bare.runAgent({ agent: join(AGENTS, "first-line.ts"), policy, outputDir: join(out, `c${i}`) });
    coldFirst.push(firstLine(r, t0));
    await bare.containersRemoved();
  }
  deps.addRow(
    SECTION,
    "cold, nothing ready (a sandbox started for the run): runAgent() → first line",
    coldFirst,
    coldPlain,
    "ms",
    { op: "<=", value: 1.1 },
  );
  deps.addRow(
    SECTION,
    "the same, against docker run on airlock's own bridge (a user-defined network) → first line",
    coldFirst,
    coldPlainAirlockNet,
    "ms",
  );
  deps.addRow(
    SECTION,
    "Docker alone: docker run → first line on airlock's bridge vs on the default bridge",
    coldPlainAirlockNet,
    coldPlain,
    "ms",
  );
  await bare.close();

  deps.log("8. warm pool: Docker alone, 20 at once on airlock's bridge");
  const burstAirlockNet: number[] = [],
    burstDefault: number[] = [];
  for (let i = 0; i < Math.max(3, Math.min(deps.reps, 5)); i++) {
    await deps.settle();
    let t = performance.now();
    await Promise.all(Array.from({ length: 20 }, () => plainRun(agentImage, "0")));
    burstDefault.push(performance.now() - t);
    t = performance.now();
    await Promise.all(Array.from({ length: 20 }, () => plainRun(agentImage, "0", NETWORK_NAME)));
    burstAirlockNet.push(performance.now() - t);
  }
  deps.addRow(
    SECTION,
    "Docker alone: 20 docker run --rm at once on airlock's bridge vs on the default bridge",
    burstAirlockNet,
    burstDefault,
    "ms",
  );

  deps.log("8. warm pool: 20 at once, warm");
  const twenty = createRunner({ gatePoolSize: 0, pool: { size: 20 } });
  const wall: number[] = [],
    plainWall: number[] = [];
  await twenty.runAgent({ agent: join(AGENTS, "exit.ts"), policy, outputDir: join(out, "t-first") });
  for (let i = 0; i < Math.max(3, Math.min(deps.reps, 5)); i++) {
    await deps.settle();
    await filled(twenty, 20);
    let t = performance.now();
    await Promise.all(Array.from({ length: 20 }, () => deps.plainDockerRun(agentImage)));
    plainWall.push(performance.now() - t);
    await filled(twenty, 20);
    t = performance.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, k) =>
        twenty.runAgent({ name: `w${k}`, agent: join(AGENTS, "exit.ts"), policy, outputDir: join(out, `t${i}-${k}`) }),
      ),
    );
    wall.push(performance.now() - t);
    const bad = results.filter((r) => r.status !== "succeeded" || r.startup?.how !== "pooled sandbox");
    if (bad.length)
      deps.log(
        `${bad.length} of 20 were not warm successes: ${bad.map((r) => `${r.status} ${r.startup?.how} ${r.error ?? ""}`).join("; ")}`,
      );
    await twenty.containersRemoved();
  }
  deps.addRow(SECTION, "20 agents at once, each from a pooled sandbox: wall time", wall, plainWall, "ms", {
    op: "<=",
    value: 1.0,
  });

  deps.log("8. warm pool: memory per pooled sandbox");
  await deps.settle();
  await filled(twenty, 20);
  const docker = dockerClient();
  const pooled = (
    await docker.listContainers({ filters: { label: [`${LABEL.role}=sandbox`, `${LABEL.run}=pool`] } })
  ).filter((c) => c.Names[0]?.startsWith("/airlock-pool-"));
  const sample = 5;
  const sandboxMiB = await Promise.all(pooled.slice(0, sample).map((c) => containerMiB(docker.getContainer(c.Id))));
  // Beside it: an idle Node process in a container of the same image (what the runtime on standby is).
  const idle = await Promise.all(
    Array.from({ length: sample }, async () => {
      const { stdout } = await execa("docker", [
        "run",
        "-d",
        "--rm",
        "--label",
        "dev.airlock.bench=idle",
        "--entrypoint",
        "node",
        agentImage,
        "-e",
        "setInterval(() => {}, 1 << 30)",
      ]);
      return stdout.trim();
    }),
  );
  await new Promise((r) => setTimeout(r, 2000));
  const idleMiB = await Promise.all(idle.map((id) => containerMiB(docker.getContainer(id))));
  await Promise.all(
    idle.map((id) =>
      docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
  deps.addRow(
    SECTION,
    "memory of a pooled sandbox while it waits (its cgroup, less reclaimable cache) vs an idle Node container of the same image",
    sandboxMiB,
    idleMiB,
    "MiB",
  );
  // What the runner holds per pooled sandbox (its attach stream and state): RSS with 20 ready vs none.
  global.gc?.();
  const withPool = process.memoryUsage().rss;
  await twenty.close();
  global.gc?.();
  const without = process.memoryUsage().rss;
  const line = `Runner memory with 20 pooled sandboxes: ${(withPool / 2 ** 20).toFixed(0)} MiB RSS, ${(without / 2 ** 20).toFixed(0)} MiB once the pool is closed (≈ ${((withPool - without) / 20 / 2 ** 20).toFixed(1)} MiB per pooled sandbox, an attach stream and its state).`;
  deps.log(line);
  return line;
}

/** A container's memory as its cgroup counts it, less the page cache it could give back. */
async function containerMiB(container: Docker.Container): Promise<number> {
  const stats = (await container.stats({ stream: false })) as unknown as {
    memory_stats: { usage: number; stats?: Record<string, number> };
  };
  const cache = stats.memory_stats.stats?.inactive_file ?? stats.memory_stats.stats?.total_inactive_file ?? 0;
  return (stats.memory_stats.usage - cache) / 2 ** 20;
}
