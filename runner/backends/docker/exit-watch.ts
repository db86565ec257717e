/**
 * Watching a started agent's container until it exits, and stopping it when it must (the policy's
 * timeout, the caller's cancel, the output folder over its limits); then its exit code and state, its
 * last lines, and what the gate refused. The init gate reports the exit before the engine does (and
 * marks the end of the agent's output on both streams), so a clean exit does not wait for the
 * engine's network teardown.
 */
import type { Duplex } from "node:stream";
import { withTimeout } from "../../docker/client.js";
import type { ContainerState, Engine, EngineContainer } from "../../docker/engine.js";
import type { DeniedConnection } from "../../gate/denied.js";
import type { EgressGate } from "../../gate/egress-gate.js";
import type { Policy } from "../../policy/index.js";
import { engineExitCode, engineWatchdog, stopper, type StopRequest } from "../../run/exit-wait.js";
import type { LogCapture } from "../../run/logs.js";
import { outputLimitProblem, outputUsage } from "../../run/output.js";

const OUTPUT_CHECK_MS = 250;

/** A started agent's container. */
export interface Started {
  container: EngineContainer;
  exited: Promise<{ StatusCode?: number }>;
  streamEnded: Promise<void>;
}

export interface WatchInput {
  engine: Engine;
  started: Started;
  gate: EgressGate;
  policy: Policy;
  graceMs: number;
  signal?: AbortSignal;
  outputDir: string;
  captures: { stdout: LogCapture; stderr: LogCapture };
  name: string;
  phase(phase: "running" | "stopping", message: string): void;
}

export interface WatchedExit {
  code: number;
  state?: ContainerState;
  stop?: StopRequest;
  /** The output folder went over a policy limit. */
  output?: string;
  denied: DeniedConnection[];
}

export async function watchUntilExit(input: WatchInput): Promise<WatchedExit> {
  const { started, gate, policy } = input;
  const { container, exited } = started;
  input.phase("running", `${input.name} is running (timeout ${policy.timeoutSeconds}s)`);
  const stops = stopper(container, input.graceMs, (r) => input.phase("stopping", r.why ?? (r.reason === "timed_out" ? `timeout of ${policy.timeoutSeconds}s reached: stopping` : "cancelled: stopping")));
  const timeoutTimer = setTimeout(() => stops.stop("timed_out"), policy.timeoutSeconds * 1000);
  const onAbort = () => stops.stop("cancelled");
  input.signal?.addEventListener("abort", onAbort, { once: true });
  // Single files are capped by RLIMIT_FSIZE; what the whole folder costs the host is watched here.
  const limits = { bytes: policy.resources.outputBytes, entries: policy.resources.outputFiles };
  let checking = false;
  const outputWatch = setInterval(() => {
    if (checking) return;
    checking = true;
    void outputUsage(input.outputDir, limits)
      .then((usage) => {
        const problem = outputLimitProblem(usage, limits);
        if (problem) stops.stop("failed", `${problem}: stopping`);
      })
      .finally(() => (checking = false));
  }, OUTPUT_CHECK_MS);
  const watchdog = engineWatchdog(input.engine);
  const { stdout, stderr } = input.captures;
  try {
    const byGate = gate.exited?.then((code) => ({ byGate: true as const, code }));
    const first = await Promise.race([exited.then((w) => ({ byGate: false as const, waited: w }), () => ({ byGate: false as const, waited: undefined })), watchdog.gone, ...(byGate ? [byGate] : [])]);
    let code: number;
    let state: ContainerState | undefined;
    let denied: DeniedConnection[] = [];
    const inspect = () => withTimeout(container.inspect(), 15_000, "the engine did not answer an inspect within 15 s").catch(() => undefined);
    if (first.byGate) {
      // The gate saw the agent exit: its report first (it holds the namespace until then).
      code = first.code;
      denied = await gate.collect({ code, stderr: "" });
      // A clean exit is final; anything else (a failure, an OOM kill, a stop) is read from the engine, which knows why.
      if (code !== 0 || stops.requested) {
        await Promise.race([exited.catch(() => undefined), watchdog.gone]);
        state = await inspect();
      }
    } else {
      ({ code, state } = await engineExitCode(container, first.waited, watchdog.gone));
    }
    // Let the last lines arrive: the gate marks the end of the agent's output on both streams;
    // otherwise the stream ends (bounded: a detached grandchild can keep it open).
    await Promise.race([started.streamEnded, ...(first.byGate && gate.outputComplete ? [gate.outputComplete] : []), new Promise((r) => setTimeout(r, 2000).unref())]);
    stdout.end();
    stderr.end();
    if (!first.byGate) {
      denied = await gate.collect({ code, stderr: stderr.text() });
      if (code !== 0 || stops.requested) state ??= await inspect();
    }
    // A burst written just before the exit is caught here.
    const output = stops.requested ? undefined : outputLimitProblem(await outputUsage(input.outputDir, limits), limits);
    return { code, denied, ...(state ? { state } : {}), ...(stops.requested ? { stop: stops.requested } : {}), ...(output ? { output } : {}) };
  } finally {
    watchdog.stop();
    stops.dispose();
    clearTimeout(timeoutTimer);
    clearInterval(outputWatch);
    input.signal?.removeEventListener("abort", onAbort);
  }
}

/** Resolves when an attach stream ends, closes or fails. */
export function streamEnd(stream: Duplex): Promise<void> {
  return new Promise<void>((res) => {
    stream.on("end", res);
    stream.on("close", res);
    stream.on("error", () => res());
  });
}
