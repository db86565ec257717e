/**
 * Where an agent runs: the one seam between a run's shared stages (run/run-stages.ts) and the thing
 * that executes it. Docker is one implementation, Kubernetes another; run-agent.ts asks for a
 * backend by name and never branches on which one it got.
 */
import type { Runner } from "../runner.js";
import type { AgentResult } from "../run/result.js";
import type { BackendRun } from "../run/run-stages.js";
import type { RunAgentOptions, RunEvent } from "../run/run-agent.js";

export const BACKEND_NAMES = ["docker", "kubernetes"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export function isBackendName(value: unknown): value is BackendName {
  return typeof value === "string" && (BACKEND_NAMES as readonly string[]).includes(value);
}

/** What a backend needs to create one run. */
export interface RunRequest {
  runner: Runner;
  options: RunAgentOptions;
  name: string;
  outputDir: string;
  /** The result so far (name, output folder, start time): each run fills in the rest. */
  base: AgentResult;
  emit: (event: RunEvent) => void;
}

/** What `airlock cleanup` removed on one backend. */
export interface CleanupReport {
  removed: { kind: string; name: string }[];
}

export interface ExecutionBackend {
  readonly name: BackendName;
  createRun(request: RunRequest): BackendRun;
  /** Remove what crashed runners left behind (everything airlock labelled, whose runner is gone; all of it with `all`). */
  cleanup(options: { all?: boolean }): Promise<CleanupReport>;
  /** Release what the backend holds between runs (connections, forwarders). Idempotent. */
  close(): Promise<void>;
}
