import { writeFile } from "node:fs/promises";
import type { DeniedConnection } from "../gate/denied.js";
import type { BusDenial } from "../bus/kind.js";
import { basename, dirname, join } from "node:path";
import { refusalsFileFor, writeRefusals, type Refusal } from "./refusals.js";

export type RunStatus = "succeeded" | "failed" | "timed_out" | "oom" | "cancelled" | "skipped" | "error";

export interface RunStartup {
  mode: "cold" | "warm";
  /**
   * What the agent's container came from: a sandbox from the warm pool; a container created now that
   * joins a gate namespace the runner kept ready; a sandbox started now; or (other images, no
   * network) a container created now with a new gate container or none.
   */
  how: "pooled sandbox" | "ready gate" | "new sandbox" | "new container";
  /** Why a run that could have been warm was not (no pooled container fits, a workspace folder, ...). */
  coldBecause?: string;
  /** Stage → ms since runAgent() was called, in the order they ended ("released": the agent's code may start). */
  stages: Record<string, number>;
}

export interface AgentResult {
  name: string;
  status: RunStatus;
  /** The agent process's exit code; null when it never ran. */
  exitCode: number | null;
  durationMs: number;
  startedAt: string;
  finishedAt: string;
  outputDir: string;
  /** The files this run wrote to /output, as copied into the output directory (relative to it); never what an earlier run left there. */
  outputFiles: string[];
  /** Entries the agent left in /output that are not files or folders (symlinks, FIFOs, ...): named, never copied or followed. */
  outputSkipped: { path: string; kind: string }[];
  /** Bytes in this run's output files. */
  outputBytes: number;
  stdout: string;
  stderr: string;
  /** Why the run is "error" (Docker missing, bad policy, image build failed, ...). */
  error?: string;
  errorCode?: string;
  /** What a defineAgent() function returned. */
  returnValue?: unknown;
  /**
   * Every refusal of the run, from every layer (the gate, the HTTPS egress proxy, the brokers), each
   * with the policy line that would allow it: also written as JSON Lines to `refusalsFile`.
   */
  refusals: Refusal[];
  /** `out/<name>.denials.jsonl`, beside the result file. */
  refusalsFile: string;
  /** Connections the gate refused (destination, protocol, count): the network part of `refusals`, as the gate reports it. */
  denied: DeniedConnection[];
  /** Whether the agent called ctx.ready(). */
  ready: boolean;
  policy: { name: string; source: string } | null;
  image?: string;
  /** What the caller should know: brokers where the agent has more rights than its policy grants. */
  warnings?: string[];
  /** What the brokers refused the run's identities (the broker part of `refusals`, as the brokers report it), with the policy line to add. */
  busDenied?: BusDenial[];
  /** The broker identities minted for this run (deleted when it ended). */
  busIdentities?: { kind: string; endpoint: string; name: string }[];
  /** Entries of the working directory kept out of /workspace because they look like secrets. */
  workspaceHidden?: string[];
  /** Warm (a pooled container) or cold, and when each startup stage ended, in ms since runAgent() was called. */
  startup?: RunStartup;
  /** Where this result was written. */
  resultFile: string;
}

/** `out/hello` → `out/hello.result.json`: beside the output folder, where the agent cannot write. */
export function resultFileFor(outputDir: string): string {
  return join(dirname(outputDir), `${basename(outputDir)}.result.json`);
}

export async function writeResult(result: AgentResult): Promise<void> {
  await writeFile(result.resultFile, `${JSON.stringify(result, null, 2)}\n`);
  await writeRefusals(result.outputDir, result.refusals);
}

/** A result for a run that has not produced anything (yet): the starting point of every result. */
export function emptyResult(name: string, outputDir: string, status: RunStatus, startedAt = new Date()): AgentResult {
  return {
    name,
    status,
    exitCode: null,
    durationMs: 0,
    startedAt: startedAt.toISOString(),
    finishedAt: "",
    outputDir,
    outputFiles: [],
    outputSkipped: [],
    outputBytes: 0,
    stdout: "",
    stderr: "",
    ready: false,
    refusals: [],
    refusalsFile: refusalsFileFor(outputDir),
    denied: [],
    policy: null,
    resultFile: resultFileFor(outputDir),
  };
}
