/**
 * Where an agent runs: the one seam between a run's shared stages (run/run-stages.ts) and the thing
 * that executes it. Docker is one implementation, Kubernetes another; the runner asks for a
 * backend by name and never branches on which one it got.
 */
import type { BackendRun } from "../run/run-stages.js";
import type { RunRequest } from "../run/run-agent.js";

export type { RunRequest };

export const BACKEND_NAMES = ["docker", "kubernetes"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export function isBackendName(value: unknown): value is BackendName {
  return typeof value === "string" && (BACKEND_NAMES as readonly string[]).includes(value);
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
