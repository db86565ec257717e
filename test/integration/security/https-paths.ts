/**
 * What the HTTPS-by-name suites share: the paths an agent can run on (on Docker: a sandbox of an
 * image airlock built, a derived image behind a gate container, a warm sandbox from the pool; in
 * the kubernetes suite, where AIRLOCK_BACKEND says so: a Pod), a runner and image for each, and one run of the probe (https-probe.cjs) on that path, which comes back
 * with the run's result, its outcomes and its output folder.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import { createRunner, type AgentResult, type Policy, type RunAgentOptions } from "../../../runner/index.js";
import { dockerClient, ensureImages } from "../../../runner/internal.js";
import { waitUntil } from "../../../runner/util/wait-until.js";
import { tempDir } from "../helpers.js";
import { derivedImage } from "./attacker.js";

export type Path = "new sandbox" | "new container" | "pooled sandbox" | "pod";
const ON_KUBERNETES = process.env.AIRLOCK_BACKEND === "kubernetes";
export const PATHS: { path: Path; label: string }[] = ON_KUBERNETES
  ? [{ path: "pod", label: "a Pod" }]
  : [
      { path: "new sandbox", label: "an image airlock built" },
      { path: "new container", label: "a derived image (gate container)" },
      { path: "pooled sandbox", label: "a warm sandbox" },
    ];

/** The security report's suite: the Docker suite's, or the kubernetes suite's own (both are in docs/SECURITY.md). */
export function suiteName(docker: string, kubernetes: string): string {
  return ON_KUBERNETES ? kubernetes : docker;
}

export type Outcomes = Record<string, { outcome: string; ms: number; body?: string }>;
const PROBE = readFileSync(join(import.meta.dirname, "https-probe.cjs"), "utf8");

/** A runner for `path` (a pool of one for the warm path, no ready gates otherwise; a Pod's backend from AIRLOCK_BACKEND). */
export function runnerFor(path: Path) {
  return createRunner(path === "pooled sandbox" ? { gatePoolSize: 0, pool: { size: 1 } } : { gatePoolSize: 0 });
}

/**
 * The probe, once, on `path`: for the warm path a first run of the same shape fills the pool, then
 * `beforeMeasured` clears what the servers saw. The run must succeed on the path it was meant for.
 */
export async function runProbe(r: {
  path: Path;
  runner: ReturnType<typeof runnerFor>;
  policy: Policy;
  options: Omit<RunAgentOptions, "command" | "policy" | "outputDir">;
  beforeMeasured?: () => void;
}): Promise<{ result: AgentResult; outcomes: Outcomes; out: string }> {
  const image =
    r.path === "new container"
      ? await derivedImage("https-derived", `FROM ${(await ensureImages(dockerClient())).agent}\nLABEL test=https\n`)
      : undefined;
  const run = (outputDir: string) =>
    r.runner.runAgent({
      command: ["node", "-e", PROBE],
      policy: r.policy,
      outputDir,
      ...r.options,
      ...(image ? { image } : {}),
    });
  if (r.path === "pooled sandbox") {
    await run(join(await tempDir(), "first"));
    await waitUntil(async () => (r.runner.warmPool?.readyCount() ?? 0) > 0, { timeoutMs: 60_000, intervalMs: 100 });
    r.beforeMeasured?.();
  }
  const out = join(await tempDir(), "out");
  const result = await run(out);
  expect(result.status, result.stderr || result.error).toBe("succeeded");
  if (r.path !== "pod") expect(result.startup?.how).toBe(r.path);
  const outcomes = JSON.parse(await readFile(join(out, "https.json"), "utf8")) as Outcomes;
  return { result, outcomes, out };
}
