/**
 * Watching a started agent's container until it exits, and stopping it when it must (the policy's
 * timeout, the caller's cancel); then its /output copied out of the container that holds it, its exit
 * code and state, its last lines, and what the gate refused. The init gate reports the exit before
 * the engine does (and marks the end of the agent's output on both streams), so a clean exit does not
 * wait for the engine's network teardown. The output limits need no watching: /output is a
 * filesystem of the policy's size and entry count (run/output-volume.ts).
 */
import type { Duplex } from "node:stream";
import { withTimeout } from "../../util/with-timeout.js";
import type { ContainerState, Engine, EngineContainer } from "./engine/engine.js";
import type { DeniedConnection } from "../../gate/denied.js";
import type { EgressGate } from "./gate/egress-gate.js";
import type { Policy } from "../../policy/index.js";
import { engineExitCode, engineWatchdog, stopper, type StopRequest } from "./stopping.js";
import type { LogCapture } from "../../run/logs.js";
import type { OutputLimits } from "../../run/output-volume.js";
import { copyOutputOut, type CopiedOutput } from "./output-copy.js";
import { skippedNote } from "../../run/output-tar.js";

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
  /**
   * Where /output goes, and which container holds its volume: the sandbox itself (its init holds it
   * after the agent's exit until the gate's collect says done) or the run's output keeper.
   */
  output: { dir: string; limits: OutputLimits; holder: "sandbox" | EngineContainer };
  captures: { stdout: LogCapture; stderr: LogCapture };
  name: string;
  phase(phase: "running" | "stopping", message: string): void;
}

export interface WatchedExit {
  code: number;
  state?: ContainerState;
  stop?: StopRequest;
  /** The output went over a policy limit. */
  output?: string;
  /** What the copy of /output skipped or could not do. */
  outputNotes: string[];
  /** What it brought back. */
  copied?: CopiedOutput;
  denied: DeniedConnection[];
}

export async function watchUntilExit(input: WatchInput): Promise<WatchedExit> {
  const { started, gate, policy } = input;
  const { container, exited } = started;
  input.phase("running", `${input.name} is running (timeout ${policy.timeoutSeconds}s)`);
  const ownOutput = input.output.holder === "sandbox";
  const stops = stopper(
    container,
    input.graceMs,
    (r) =>
      input.phase(
        "stopping",
        r.why ??
          (r.reason === "timed_out" ? `timeout of ${policy.timeoutSeconds}s reached: stopping` : "cancelled: stopping"),
      ),
    ownOutput ? "SIGUSR2" : "SIGKILL",
  );
  const timeoutTimer = setTimeout(() => stops.stop("timed_out"), policy.timeoutSeconds * 1000);
  const onAbort = () => stops.stop("cancelled");
  input.signal?.addEventListener("abort", onAbort, { once: true });
  let copied: CopiedOutput | undefined;
  const copyOut = async (holder: EngineContainer) =>
    (copied ??= await copyOutputOut(holder, input.output.dir, input.output.limits));
  const watchdog = engineWatchdog(input.engine);
  const { stdout, stderr } = input.captures;
  try {
    const byGate = gate.exited?.then((code) => ({ byGate: true as const, code }));
    const first = await Promise.race([
      exited.then(
        (w) => ({ byGate: false as const, waited: w }),
        () => ({ byGate: false as const, waited: undefined }),
      ),
      watchdog.gone,
      ...(byGate ? [byGate] : []),
    ]);
    let code: number;
    let state: ContainerState | undefined;
    let denied: DeniedConnection[] = [];
    const inspect = () =>
      withTimeout(container.inspect(), 15_000, "the engine did not answer an inspect within 15 s").catch(
        () => undefined,
      );
    if (first.byGate) {
      // The gate saw the agent exit: /output and its report first (it holds the container until then).
      code = first.code;
      if (ownOutput) await copyOut(container);
      denied = await gate.collect({ code, stderr: "" });
      // A clean exit is final; anything else (a failure, an OOM kill, a stop) is read from the engine, which knows why.
      if (code !== 0 || stops.requested) {
        // Only waiting for the engine to see the exit; its state is read right after.
        await Promise.race([exited.catch(() => undefined), watchdog.gone]);
        state = await inspect();
      }
    } else {
      ({ code, state } = await engineExitCode(container, first.waited, watchdog.gone));
    }
    // Let the last lines arrive: the gate marks the end of the agent's output on both streams;
    // otherwise the stream ends (bounded: a detached grandchild can keep it open).
    await Promise.race([
      started.streamEnded,
      ...(first.byGate && gate.outputComplete ? [gate.outputComplete] : []),
      new Promise((r) => setTimeout(r, 2000).unref()),
    ]);
    stdout.end();
    stderr.end();
    if (!first.byGate) {
      denied = await gate.collect({ code, stderr: stderr.text() });
      if (code !== 0 || stops.requested) state ??= await inspect();
    }
    const holder = input.output.holder;
    if (holder !== "sandbox") await copyOut(holder);
    const outputNotes: string[] = [];
    if (!copied) outputNotes.push("the agent's /output was lost: its sandbox ended before it could be copied out");
    if (copied?.error) outputNotes.push(copied.error);
    if (copied?.skipped?.length) outputNotes.push(skippedNote(copied.skipped));
    const output = copied?.problem;
    return {
      code,
      denied,
      outputNotes,
      ...(copied ? { copied } : {}),
      ...(state ? { state } : {}),
      ...(stops.requested ? { stop: stops.requested } : {}),
      ...(output ? { output } : {}),
    };
  } finally {
    watchdog.stop();
    stops.dispose();
    clearTimeout(timeoutTimer);
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
