/**
 * What each way of starting an agent on Docker is given (start/*.ts), and what it hands back. A
 * start records everything it creates in the run's `held` resources as soon as it exists, so that
 * the run's dispose() releases it whatever happened next; the values the next stage needs (the
 * started container, its gate, who holds /output) are returned, not left in fields.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Duplex } from "node:stream";
import type { EngineContainer } from "../engine/engine.js";
import { runLabels } from "../../../labels.js";
import { RESOLV_CONF } from "../../../gate/plan.js";
import type { ImageSet } from "../../../images/images.js";
import type { LogCapture, StreamName } from "../../../run/logs.js";
import type { PreparedRun } from "../../../run/prepare.js";
import type { RunStartup } from "../../../run/result.js";
import type { RunOptions } from "../../../run/run-agent.js";
import type { DockerBackend } from "../docker-backend.js";
import type { Started } from "../exit-watch.js";
import type { EgressGate } from "../gate/egress-gate.js";
import type { TakenGate } from "../gate/gate-container.js";
import { openEgressGate } from "../gate/open-gate.js";
import type { HeldResources } from "../held.js";
import type { ChosenImage } from "../image-choice.js";

/** The run's side of a start: its progress, its captures, what it holds. */
export interface StartingRun {
  runId: string;
  name: string;
  options: RunOptions;
  startup: RunStartup;
  held: HeldResources;
  /** A startup stage ended now. */
  mark(stage: string): void;
  phase(phase: "gate" | "starting", message: string): void;
  /** The agent's stdout and stderr captures (control lines taken out; `intercept` sees them first). */
  openCaptures(intercept?: (line: string, stream: StreamName) => boolean): { stdout: LogCapture; stderr: LogCapture };
}

export interface StartContext {
  docker: DockerBackend;
  run: StartingRun;
  prepared: PreparedRun;
  image: ChosenImage;
  images: ImageSet;
  /** When everything this run creates may be removed by a sweep. */
  expiresAt: number;
  /** The broker identities' variables, minted meanwhile. */
  rights: Promise<Record<string, string>>;
}

/** The agent started, behind its gate, and the container that holds its /output until it is copied out. */
export interface StartedAgent {
  started: Started;
  gate: EgressGate;
  outputHolder: EngineContainer | "sandbox";
  /** Its stdout and stderr, as the run captures them. */
  captures: Captures;
  /** The host folder the sandbox sees at /run/airlock, where the run's refusals so far are written. */
  refusalsDir: string;
}

export type Captures = { stdout: LogCapture; stderr: LogCapture };

/** Where the run's /etc/hosts (the gate writes it), /etc/resolv.conf and /run/airlock (its refusals) are on the host. */
export function networkFiles(prepared: PreparedRun): { hostsPath: string; resolvPath: string; refusalsDir: string } {
  return {
    hostsPath: join(prepared.runDir, "hosts"),
    resolvPath: join(prepared.runDir, "resolv.conf"),
    refusalsDir: join(prepared.runDir, "refusals"),
  };
}

export const writeResolvConf = (path: string) => writeFile(path, RESOLV_CONF, { mode: 0o644 });

export const outputLimits = (prepared: PreparedRun) => ({
  bytes: prepared.policy.resources.outputBytes,
  entries: prepared.policy.resources.outputFiles,
});

/** The run's gate: in the sandbox itself (its init), or a gate container (the `readyGate` taken, or any image airlock did not build). */
export async function openRunGate(
  ctx: StartContext,
  gate: { hostsPath: string; readyGate?: TakenGate },
): Promise<EgressGate> {
  const { docker, run, prepared, image, images, expiresAt } = ctx;
  run.phase("gate", prepared.policy.network.disabled ? "network disabled" : "setting up the gate");
  const opened = await openEgressGate(
    {
      network: () => docker.network(),
      loopback: docker.loopback,
      gatePool: (img, net) => docker.gatePool(img, net),
      verifier: (img, labels) => docker.verifier(img, labels),
      background: (w) => docker.background(w),
    },
    {
      policy: prepared.policy,
      selfGated: image.airlocks && !gate.readyGate,
      // A run that joined a gate kept ready: the runner tops its gates up once runs stop starting.
      ...(gate.readyGate ? { readyGate: gate.readyGate } : {}),
      gateImage: images.ids.gate,
      user: prepared.user,
      runId: run.runId,
      hostsPath: gate.hostsPath,
      holdSeconds: Math.ceil((expiresAt - Date.now()) / 1000),
      labels: runLabels(run.runId, "gate", run.name, expiresAt),
      ...(run.options.resolver ? { resolver: run.options.resolver } : {}),
      ...(prepared.https ? { terminating: prepared.https.terminating } : {}),
      ...(prepared.taps ? { taps: prepared.taps } : {}),
      onPhase: (m) => run.phase("gate", m),
      onMark: (stage) => run.mark(stage),
    },
  );
  run.held.gate = opened;
  run.mark("gate");
  return opened;
}

/** A container's multiplexed stream into the run's captures. */
export function pipeStreams(
  docker: DockerBackend,
  stream: Duplex,
  captures: { stdout: LogCapture; stderr: LogCapture },
) {
  const outPipe = new PassThrough();
  const errPipe = new PassThrough();
  outPipe.pipe(captures.stdout.writable());
  errPipe.pipe(captures.stderr.writable());
  docker.engine.demux(stream, outPipe, errPipe);
}
