/**
 * The agent's container in its Pod, from its start to its exit: its log followed into the run's
 * capture, the policy's timeout and the caller's cancellation enforced (SIGTERM, then SIGKILL after
 * the grace, sent by the keeper so that the Pod and its /output stay), and afterwards /output and the
 * denied-connection tables read back from the Pod.
 */
import { PassThrough } from "node:stream";
import type { V1ContainerStateTerminated } from "@kubernetes/client-node";
import { KubernetesError } from "../../errors.js";
import { parseDeniedReport, type DeniedConnection } from "../../gate/denied.js";
import type { StopRequest } from "../../run/run-stages.js";
import type { LogCapture } from "../../run/logs.js";
import type { RefusalSink } from "../../run/refusal-feed.js";
import { REFUSALS_DIR } from "../../../agent-runtime/protocol.js";
import { outputUnpacker, skippedNote } from "../../run/output-tar.js";
import type { CopiedFiles } from "../../run/run-stages.js";
import { apiMessage, type KubeClient } from "./client.js";
import { execIn, execRetrying } from "./exec.js";
import type { PodObjects } from "./pod-objects.js";
import { describeWaiting, fixFor, GATE_START_MS } from "./pod-gate.js";
import { AGENT_CONTAINER, KEEPER_CONTAINER, POD_GATE, REPORT_CONTAINER } from "./pod-spec.js";
import { containerStatus, podStartProblem, type PodWatch } from "./pod-watch.js";

/** How long a stop waits for the keeper to be running (it starts right after the agent). */
const KEEPER_START_MS = 10_000;
/** After the SIGKILL, how long the agent may still take to be gone before its Pod is deleted. */
const KILL_BACKSTOP_MS = 5000;

/** One Pod of one run. */
export interface RunPod {
  client: KubeClient;
  namespace: string;
  pod: string;
  watch: PodWatch;
  objects: PodObjects;
}

const target = (p: Pick<RunPod, "client" | "namespace" | "pod">) => ({
  client: p.client,
  namespace: p.namespace,
  pod: p.pod,
});

export interface AgentEnd {
  terminated?: Pick<V1ContainerStateTerminated, "exitCode" | "reason">;
  stop?: StopRequest;
  /** The Pod was evicted: why. */
  evicted?: string;
}

/** Follow the agent until it exited, stopping it on timeout or cancellation. Warnings go to `warn`. */
export async function followAgent(
  p: RunPod,
  r: {
    name: string;
    timeoutSeconds: number;
    graceMs: number;
    signal?: AbortSignal;
    /** The one capture: the log API gives stdout and stderr as one stream. */
    capture: LogCapture;
    phase(phase: "starting" | "running" | "stopping", message: string): void;
    warn(message: string): void;
  },
): Promise<AgentEnd> {
  let stop: StopRequest | undefined;
  const timers: NodeJS.Timeout[] = [];
  const stopNow = (request: StopRequest) => {
    if (stop) return;
    stop = request;
    r.phase(
      "stopping",
      request.why ??
        (request.reason === "timed_out" ? `timeout of ${r.timeoutSeconds}s reached: stopping` : "cancelled: stopping"),
    );
    // SIGTERM now and SIGKILL after the grace, sent by the keeper, so that the Pod (and the output) stays.
    void signalAgent(p, "TERM", r.warn);
    timers.push(setTimeout(() => void signalAgent(p, "KILL", r.warn), r.graceMs));
    // If the agent outlives its SIGKILL (it kept the keeper from sending it), the Pod goes, output and all.
    timers.push(setTimeout(() => p.objects.deletePodNow(), r.graceMs + KILL_BACKSTOP_MS));
  };
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => stopNow({ reason: "cancelled" });
  r.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const running = await p.watch.until((pod) => {
      const s = containerStatus(pod, AGENT_CONTAINER);
      if (s?.state?.running || s?.state?.terminated) return true;
      const problem = podStartProblem(pod);
      return problem ? problem : undefined;
    }, GATE_START_MS);
    if (typeof running === "string")
      throw new KubernetesError(`the agent's container could not start: ${running}`, fixFor(running));
    if (!running)
      throw new KubernetesError(
        `the agent's container did not start within ${GATE_START_MS / 1000} s${describeWaiting(p.watch.current)}`,
      );
    // The timeout counts from the agent's start, as on Docker: a slow Pod start is not the agent's time.
    timer = setTimeout(() => stopNow({ reason: "timed_out" }), r.timeoutSeconds * 1000);
    r.phase("running", `${r.name} is running (timeout ${r.timeoutSeconds}s)`);
    const pipe = new PassThrough();
    pipe.pipe(r.capture.writable());
    const logsDone = new Promise<void>((resolve) => pipe.on("finish", resolve));
    const follow = await p.client.log
      .log(p.namespace, p.pod, AGENT_CONTAINER, pipe, { follow: true })
      .catch((err: unknown) => {
        r.warn(`could not follow the agent's log: ${apiMessage(err)}`);
        pipe.end();
        return undefined;
      });
    const terminated = await p.watch.until(
      (pod) =>
        containerStatus(pod, AGENT_CONTAINER)?.state?.terminated ??
        (pod.status?.phase === "Failed"
          ? { exitCode: 137, reason: pod.status.reason ?? "Failed", message: pod.status.message }
          : undefined),
      24 * 3600_000,
    );
    await Promise.race([logsDone, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    follow?.abort();
    const evicted =
      p.watch.current?.status?.reason === "Evicted"
        ? `the Pod was evicted: ${p.watch.current.status.message ?? ""}`.trim()
        : undefined;
    return { ...(terminated ? { terminated } : {}), ...(stop ? { stop } : {}), ...(evicted ? { evicted } : {}) };
  } finally {
    clearTimeout(timer);
    timers.forEach(clearTimeout);
    r.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * The keeper signals the agent's processes. It starts after the agent (the kubelet starts a Pod's
 * containers in order), so a stop early in a run waits for it first.
 */
async function signalAgent(p: RunPod, signal: "TERM" | "KILL", warn: (message: string) => void): Promise<void> {
  await p.watch.until(
    (pod) => (containerStatus(pod, KEEPER_CONTAINER)?.state?.running ? true : undefined),
    KEEPER_START_MS,
  );
  const sent = await execRetrying({ ...target(p), container: KEEPER_CONTAINER }, [POD_GATE, "signal", signal], {
    timeoutMs: 10_000,
  });
  if (sent.code !== 0) warn(`could not send SIG${signal} to the agent: ${sent.stderr.trim() || `exit ${sent.code}`}`);
}

export interface Collected {
  denied?: DeniedConnection[];
  copied?: CopiedFiles;
  /** What over-ran the policy's output limits. */
  problem?: string;
  warnings: string[];
}

/** /output from the keeper (as a tar) into `outputDir`, within the limits; the denied-connection tables from the reporter. */
export async function collectFromPod(
  p: Pick<RunPod, "client" | "namespace" | "pod">,
  outputDir: string,
  limits: { outputBytes: number; outputFiles: number },
): Promise<Collected> {
  const unpack = outputUnpacker(outputDir, { bytes: limits.outputBytes, entries: limits.outputFiles });
  const [tarred, report] = await Promise.all([
    execIn({ ...target(p), container: KEEPER_CONTAINER }, ["tar", "-C", "/output", "-cf", "-", "."], {
      sink: unpack.sink,
      timeoutMs: 120_000,
    }).catch((err: Error) => ({ code: -1, stderr: err.message, stdout: Buffer.alloc(0) })),
    execRetrying({ ...target(p), container: REPORT_CONTAINER }, [POD_GATE, "report"], { timeoutMs: 15_000 }),
  ]);
  // Awaited below; until then a rejection must not count as unhandled.
  unpack.result.catch(() => {});
  const out: Collected = { warnings: [] };
  if (report.code === 0) out.denied = parseDeniedReport(report.stdout.toString());
  if (tarred.code === -1) {
    unpack.sink.destroy();
    out.warnings.push(`the agent's /output could not be copied back: ${tarred.stderr}`);
    return out;
  }
  unpack.sink.end();
  const unpacked = await unpack.result.catch((err: Error) => {
    out.warnings.push(`the agent's /output could not be unpacked: ${err.message}`);
    return undefined;
  });
  if (unpacked?.skipped.length) out.warnings.push(skippedNote(unpacked.skipped));
  if (unpacked) {
    out.copied = { files: unpacked.written, bytes: unpacked.bytes, special: unpacked.special };
    if (unpacked.problem) out.problem = unpacked.problem;
  }
  return out;
}

/** A file's content on exec's command line: one argument holds at most 128 KiB (Linux). */
const ARG_BYTES = 120 * 1024;

/** Whole lines of `text` up to ARG_BYTES (the live list is a report; the result has every entry). */
function withinArg(text: string): string {
  if (Buffer.byteLength(text) <= ARG_BYTES) return text;
  const cut = Buffer.from(text).subarray(0, ARG_BYTES).toString("utf8");
  return cut.slice(0, cut.lastIndexOf("\n") + 1);
}

/**
 * The agent's refusals so far, written into /run/airlock (the agent's read-only mount) through the
 * reporter container, one exec per write: each file beside and moved into place.
 */
export function podRefusalSink(p: RunPod): RefusalSink {
  return {
    async write(files) {
      const script = files
        .map(
          (f, i) =>
            `printf %s "$${i + 1}" > ${REFUSALS_DIR}/${f.name}.tmp && mv -f ${REFUSALS_DIR}/${f.name}.tmp ${REFUSALS_DIR}/${f.name}`,
        )
        .join(" && ");
      const r = await execRetrying(
        { ...target(p), container: REPORT_CONTAINER },
        ["sh", "-c", script, "sh", ...files.map((f) => withinArg(f.content))],
        { timeoutMs: 10_000 },
      );
      if (r.code !== 0) throw new KubernetesError(`could not write the agent's refusals: ${String(r.stderr).trim()}`);
    },
  };
}
