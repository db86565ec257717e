/**
 * One agent's run from its options to its result, whatever backend executes it (the shared stages
 * are in run-stages.ts, each backend's own in runner/backends/; runner.ts picks the backend). Never
 * throws for a run that could not happen (bad policy, Docker missing, build failed): the result has
 * status "error" and the reason. What the run created is always released.
 */
import { mkdir } from "node:fs/promises";
import { basename, dirname, extname, resolve } from "node:path";
import { AirlockError } from "../errors.js";
import type { DescribeCluster, RecentKafkaClusters } from "../bus/kafka-preflight.js";
import type { BrokerSweeps } from "../bus/rights.js";
import type { EgressCa } from "./egress-ca.js";
import type { Resolver } from "../gate/plan.js";
import type { LanguageName } from "../languages/names.js";
import type { Policy, PolicyInput } from "../policy/index.js";
import type { StreamName } from "./logs.js";
import type { Refusal } from "./refusals.js";
import type { BackendRun } from "./run-stages.js";
import { emptyResult, writeResult, type AgentResult } from "./result.js";

/** What one run needs, whatever executes it (runner.ts adds which runner and backend: RunAgentOptions). */
export interface RunOptions {
  /** A .ts, .js or .py agent file. Either this or `command`. */
  agent?: string;
  /** The language it is written in (default: the policy's runtime, else the file's extension). A command runs in that language's image. */
  runtime?: LanguageName;
  /** Run anything else: argv inside the container (in `image`, default the agent image). */
  command?: string[];
  image?: string;
  /** A policy file, a loaded Policy, or a policy object (validated like a file). */
  policy: string | Policy | PolicyInput;
  /** Host folder the agent's /output is copied into after it exits. Created if missing. */
  outputDir: string;
  /** Type-check a TypeScript agent with its project's own TypeScript before anything starts (errors name file, line and column). */
  typecheck?: boolean;
  /**
   * Host folder mounted read-only at /workspace, with its secret-looking files (.env, keys, ...)
   * kept out unless the policy's workspace.include names them. Default: nothing is mounted.
   */
  workingDir?: string;
  /** Values for the variables the policy's env.allow lists (instead of the caller's environment). */
  env?: Record<string, string>;
  /** Aborting stops the agent: SIGTERM, then SIGKILL after the grace. */
  signal?: AbortSignal;
  /** Name in logs and results. Default: from the agent file (its folder for agent.ts/index.ts). */
  name?: string;
  /** Progress, output lines and readiness, as they happen. airlock itself prints nothing. */
  onEvent?: (event: RunEvent) => void;
  /** Time between SIGTERM and SIGKILL. Default 5000 ms. */
  stopGraceMs?: number;
  /** stdout and stderr kept in the result, per stream. Default 1 MiB. */
  logCapBytes?: number;
  /** How DNS names in the policy are resolved on the host (for tests). */
  resolver?: Resolver;
  /**
   * CAs (PEM) the gate trusts for the certificates of HTTPS services it terminates (network.https
   * with headers or inspect), instead of Node's roots and the runner's NODE_EXTRA_CA_CERTS.
   */
  upstreamCa?: string;
  /** Set by runAgents(): the group this agent runs in (AIRLOCK_GROUP, AIRLOCK_GROUP_RUN_ID). */
  group?: { name: string; runId: string };
  /** Fail when a broker in the policy's bus section cannot have its rights enforced (no admin access), instead of warning. */
  requireBusRights?: boolean;
  /** How the Kafka preflight reads the cluster's advertised brokers (for tests). */
  describeKafka?: DescribeCluster;
}

export type RunEvent =
  | {
      type: "phase";
      agent: string;
      phase: "waiting" | "preparing" | "images" | "gate" | "starting" | "running" | "stopping" | "collecting";
      message: string;
    }
  | { type: "build"; agent: string; line: string }
  | { type: "output"; agent: string; stream: StreamName; line: string }
  | { type: "ready"; agent: string }
  | { type: "warning"; agent: string; message: string }
  /** The run's refusals so far, when the live list (refusal-feed.ts) found a new one. */
  | { type: "refused"; agent: string; refusals: Refusal[] }
  | { type: "finished"; agent: string; result: AgentResult };

export function agentNameFor(options: Pick<RunOptions, "agent" | "name">, policy?: { name: string }): string {
  if (options.name) return options.name;
  if (options.agent) {
    const stem = basename(options.agent, extname(options.agent));
    const generic = ["agent", "index", "main"].includes(stem);
    return (generic ? basename(dirname(resolve(options.agent))) : stem) || "agent";
  }
  return policy?.name ?? "agent";
}

/** What a backend needs to create one run. */
export interface RunRequest {
  options: RunOptions;
  name: string;
  outputDir: string;
  /** The result so far (name, output folder, start time): each run fills in the rest. */
  base: AgentResult;
  emit: (event: RunEvent) => void;
  /** What the runner keeps for its runs. */
  runner: RunnerServices;
}

/** What a runner gives each of its runs. */
export interface RunnerServices {
  /** Work that may finish after the result (removals): the runner waits for it before it closes. */
  background: (work: Promise<unknown>) => void;
  /** The brokers this runner has swept of crashed runners' identities. */
  brokerSweeps: BrokerSweeps;
  /** What the Kafka clusters this runner asked advertised, lately. */
  kafkaClusters: RecentKafkaClusters;
  /** The runner's CA for HTTPS its gates terminate (its key only in the runner's memory). */
  egressCa: EgressCa;
}

/**
 * Run one agent: `createRun` is the chosen backend's (the runner asks for it by name, so a backend
 * that cannot be had, such as a cluster that does not answer, becomes the result's error too).
 */
export async function runOne(
  options: RunOptions,
  createRun: (request: RunRequest) => Promise<BackendRun>,
  runner: RunnerServices,
): Promise<AgentResult> {
  const started = Date.now();
  const outputDir = resolve(options.outputDir);
  const name = agentNameFor(
    options,
    typeof options.policy === "object" ? (options.policy as { name: string }) : undefined,
  );
  const emit = (event: RunEvent) => {
    try {
      options.onEvent?.(event);
    } catch {
      // a listener's bug must not break the run
    }
  };
  const base = emptyResult(name, outputDir, "error", new Date(started));
  let run: BackendRun | undefined;
  let result: AgentResult;
  try {
    run = await createRun({ options, name, outputDir, base, emit, runner });
    result = await run.execute();
  } catch (err) {
    result = {
      ...base,
      ...run?.partial(),
      status: "error",
      error: err instanceof Error ? err.message : String(err),
      errorCode: err instanceof AirlockError ? err.code : "INTERNAL",
    };
  } finally {
    await run?.dispose();
  }
  const late = run?.releaseWarnings() ?? [];
  if (late.length) result.warnings = [...(result.warnings ?? []), ...late];
  // What this run brought back (the runner wrote it: the caller's own), never what an earlier run
  // left there (which stays, unless this run wrote a file of the same name).
  const copied = run?.copiedOutput();
  result.outputFiles = [...(copied?.files ?? [])].sort();
  result.outputSkipped = [...(copied?.special ?? [])].sort((a, b) => a.path.localeCompare(b.path));
  result.outputBytes = copied?.bytes ?? 0;
  result.finishedAt = new Date().toISOString();
  result.durationMs = Date.now() - started;
  await mkdir(dirname(result.resultFile), { recursive: true })
    .then(() => writeResult(result))
    .catch((err: unknown) => {
      // The caller has the result; the file beside the output folder is a copy. Say it is missing.
      result.warnings = [...(result.warnings ?? []), `could not write ${result.resultFile}: ${(err as Error).message}`];
    });
  emit({ type: "finished", agent: name, result });
  return result;
}
