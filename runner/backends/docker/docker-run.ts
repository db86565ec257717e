/**
 * An agent run on Docker, its stages in the order they happen (the shared ones are in
 * run/run-stages.ts):
 *
 *   prepare → image → gate (rules in force, checked) → start → wait → collect
 *
 * Each stage hands the next what it needs; dispose() releases everything, whatever happened.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Duplex } from "node:stream";
import { RunOptionsError } from "../../errors.js";
import { assertDockerReachable, isNotFound, withTimeout } from "../../docker/client.js";
import { reapOrphansOnce } from "../../docker/cleanup.js";
import type { ContainerState, EngineContainer } from "../../docker/engine.js";
import { runLabels } from "../../docker/labels.js";
import type { EgressGate } from "../../gate/egress-gate.js";
import { openEgressGate } from "../../gate/open-gate.js";
import { RESOLV_CONF } from "../../gate/plan.js";
import type { ImageSet } from "../../images/images.js";
import { trustedImages } from "../../images/trust.js";
import type { Policy } from "../../policy/index.js";
import { agentSpec } from "../../run/container-spec.js";
import { toDockerEnv } from "../../run/env.js";
import { engineExitCode, engineWatchdog, stopper, type StopRequest } from "../../run/exit-wait.js";
import { outputLimitProblem, outputUsage } from "../../run/output.js";
import type { PreparedRun } from "../../run/prepare.js";
import type { AgentResult } from "../../run/result.js";
import { RunStages } from "../../run/run-stages.js";

const OUTPUT_CHECK_MS = 250;

interface ChosenImage {
  /** What the container is created from: the image ID (a tag could be moved meanwhile). */
  id: string;
  /** The language's checks that need the image (a Python agent's compile check): run while the gate is set up, awaited before the container is created. */
  checked: Promise<void>;
  /** What the result shows. */
  label: string;
  /** airlock built it (its ID is recorded), so its own init gates it. */
  airlocks: boolean;
}

interface Started {
  container: EngineContainer;
  exited: Promise<{ StatusCode?: number }>;
  streamEnded: Promise<void>;
}

/** One Docker run's resources and state; dispose() releases everything, whatever happened. */
export class DockerRun extends RunStages {
  private gate?: EgressGate;
  private container?: EngineContainer;

  async execute(): Promise<AgentResult> {
    const prepared = await this.prepare(async () => {
      await assertDockerReachable(this.runner.docker);
      if (this.runner.reapOrphans) await reapOrphansOnce(this.runner.docker);
    });
    const images = await this.runner.images((line) => this.emit({ type: "build", agent: this.name, line }));
    const image = await this.chooseImage(prepared, images);
    const expiresAt = Date.now() + prepared.policy.timeoutSeconds * 1000 + this.graceMs + 120_000;
    // Broker identities are minted while the gate is set up.
    const rights = this.mintRights(prepared);
    const gate = (this.gate = await this.openGate(prepared, image, images, expiresAt));
    await image.checked;
    // airlock's init takes the credentials with its start line, so minting (Kafka's takes ~100 ms)
    // overlaps the container's start; any other image gets them when its container is created.
    const late = gate.acceptsLateEnv ? rights : undefined;
    if (!late) Object.assign(prepared.env, await rights);
    const started = await this.start(prepared, image, gate, expiresAt, late);
    const exit = await this.waitForExit(prepared.policy, started, gate);
    return this.finish({ code: exit.code, ...(exit.state?.oomKilled ? { oomKilled: true } : {}), ...(exit.stop ? { stop: exit.stop } : {}), ...(exit.output ? { output: exit.output } : {}) });
  }

  /** The language's image (with the policy's packages), or the caller's image, and whether airlock built it. */
  private async chooseImage(prepared: PreparedRun, images: ImageSet): Promise<ChosenImage> {
    const o = this.options;
    if (!o.image) {
      const ctx = { docker: this.runner.docker, images, progress: (line: string) => this.emit({ type: "build", agent: this.name, line }) };
      const built = await prepared.language.image(ctx, prepared.policy);
      this.image = built.tag;
      const checked = prepared.staged?.check?.(ctx, built) ?? Promise.resolve();
      // Awaited after the gate is open; until then a failure must not count as unhandled.
      checked.catch(() => {});
      return { id: built.id, label: built.tag, airlocks: true, checked };
    }
    this.image = o.image;
    const info = await withTimeout(this.runner.docker.getImage(o.image).inspect(), 15_000, "the engine did not answer an image inspect within 15 s").catch((err: unknown) => {
      if (isNotFound(err)) throw new RunOptionsError(`image ${o.image} is not on this engine`, `build or pull it first (docker pull ${o.image})`);
      throw err;
    });
    return { id: info.Id, label: o.image, airlocks: trustedImages().has(info.Id), checked: Promise.resolve() };
  }

  private async openGate(prepared: PreparedRun, image: ChosenImage, images: ImageSet, expiresAt: number): Promise<EgressGate> {
    this.phase("gate", prepared.policy.network.disabled ? "network disabled" : "setting up the gate");
    return openEgressGate(
      {
        docker: this.runner.docker,
        loopback: this.runner.loopback,
        gatePool: (img, net) => this.runner.gatePool(img, net),
        verifier: (img, labels) => this.runner.verifier(img, labels),
        background: (w) => this.runner.background(w),
      },
      {
        policy: prepared.policy,
        airlockImage: image.airlocks,
        gateImage: images.ids.gate,
        user: prepared.user,
        runId: this.runId,
        hostsPath: join(prepared.runDir, "hosts"),
        holdSeconds: Math.ceil((expiresAt - Date.now()) / 1000),
        labels: runLabels(this.runId, "gate", this.name, expiresAt),
        ...(this.options.resolver ? { resolver: this.options.resolver } : {}),
        onPhase: (m) => this.phase("gate", m),
      },
    );
  }

  /** Create the container, attach to it, start it, and let the gate put its rules in force. */
  private async start(prepared: PreparedRun, image: ChosenImage, gate: EgressGate, expiresAt: number, lateEnv?: Promise<Record<string, string>>): Promise<Started> {
    const o = this.options;
    const { policy } = prepared;
    this.phase("starting", `starting ${this.name}`);
    const resolvPath = join(prepared.runDir, "resolv.conf");
    await writeFile(resolvPath, RESOLV_CONF, { mode: 0o644 });
    const { stdout, stderr } = this.openCaptures(gate.intercept);

    const container = (this.container = await this.runner.engine.createContainer(
      agentSpec({
        name: `airlock-${this.runId}`,
        image: image.id,
        network: gate.network,
        user: prepared.user,
        env: toDockerEnv(prepared.env),
        // In airlock's images: the runtime runs the bundled agent, or the command replaces it.
        // Any other image keeps its own entrypoint, as `docker run IMAGE CMD` does.
        ...(image.airlocks ? { entrypoint: o.command ? [] : [...prepared.language.runtimeArgv] } : {}),
        cmd: o.command ?? [prepared.staged!.entry],
        workspaceBinds: prepared.workspace.binds,
        outputDir: this.outputDir,
        ...(prepared.bundleDir ? { bundleDir: prepared.bundleDir } : {}),
        hostsFile: join(prepared.runDir, "hosts"),
        resolvConf: resolvPath,
        memoryBytes: policy.resources.memoryBytes,
        cpus: policy.resources.cpus,
        pids: policy.resources.pids,
        maxFileBytes: policy.resources.outputBytes,
        labels: runLabels(this.runId, "agent", this.name, expiresAt),
      }),
    ));
    const stream = await container.attach({ stdin: gate.usesStdin });
    const outPipe = new PassThrough();
    const errPipe = new PassThrough();
    outPipe.pipe(stdout.writable());
    errPipe.pipe(stderr.writable());
    this.runner.engine.demux(stream, outPipe, errPipe);
    const streamEnded = streamEnd(stream);
    // "next-exit": a container that is created but not started yet counts as not running.
    const exited = container.wait("next-exit");
    exited.catch(() => {});
    gate.beforeStart?.(stream);
    await container.start();
    await gate.open(container, stream, exited, lateEnv);
    return { container, exited, streamEnded };
  }

  private async waitForExit(policy: Policy, started: Started, gate: EgressGate): Promise<{ code: number; state?: ContainerState; stop?: StopRequest; output?: string }> {
    const { container, exited } = started;
    this.phase("running", `${this.name} is running (timeout ${policy.timeoutSeconds}s)`);
    const stops = stopper(container, this.graceMs, (r) => this.phase("stopping", r.why ?? (r.reason === "timed_out" ? `timeout of ${policy.timeoutSeconds}s reached: stopping` : "cancelled: stopping")));
    const timeoutTimer = setTimeout(() => stops.stop("timed_out"), policy.timeoutSeconds * 1000);
    const onAbort = () => stops.stop("cancelled");
    this.options.signal?.addEventListener("abort", onAbort, { once: true });
    // Single files are capped by RLIMIT_FSIZE; what the whole folder costs the host is watched here.
    const limits = { bytes: policy.resources.outputBytes, entries: policy.resources.outputFiles };
    let checking = false;
    const outputWatch = setInterval(() => {
      if (checking) return;
      checking = true;
      void outputUsage(this.outputDir, limits)
        .then((usage) => {
          const problem = outputLimitProblem(usage, limits);
          if (problem) stops.stop("failed", `${problem}: stopping`);
        })
        .finally(() => (checking = false));
    }, OUTPUT_CHECK_MS);
    const watchdog = engineWatchdog(this.runner.engine);
    try {
      const byGate = gate.exited?.then((code) => ({ byGate: true as const, code }));
      const first = await Promise.race([exited.then((w) => ({ byGate: false as const, waited: w }), () => ({ byGate: false as const, waited: undefined })), watchdog.gone, ...(byGate ? [byGate] : [])]);
      let code: number;
      let state: ContainerState | undefined;
      if (first.byGate) {
        // The gate saw the agent exit: its report first (it holds the namespace until then).
        code = first.code;
        this.denied = await gate.collect({ code, stderr: "" });
        // A clean exit is final; anything else (a failure, an OOM kill, a stop) is read from the engine, which knows why.
        if (code !== 0 || stops.requested) {
          await Promise.race([exited.catch(() => undefined), watchdog.gone]);
          state = await withTimeout(container.inspect(), 15_000, "the engine did not answer an inspect within 15 s").catch(() => undefined);
        }
      } else {
        ({ code, state } = await engineExitCode(container, first.waited, watchdog.gone));
      }
      // Let the last lines arrive: the gate marks the end of the agent's output on both streams;
      // otherwise the stream ends (bounded: a detached grandchild can keep it open).
      await Promise.race([started.streamEnded, ...(first.byGate && gate.outputComplete ? [gate.outputComplete] : []), new Promise((r) => setTimeout(r, 2000).unref())]);
      this.stdout!.end();
      this.stderr!.end();
      if (!first.byGate) {
        this.denied = await gate.collect({ code, stderr: this.stderr!.text() });
        if (code !== 0 || stops.requested) state ??= await withTimeout(container.inspect(), 15_000, "the engine did not answer an inspect within 15 s").catch(() => undefined);
      }
      await this.readBusDenials();
      // A burst written just before the exit is caught here.
      const output = stops.requested ? undefined : outputLimitProblem(await outputUsage(this.outputDir, limits), limits);
      return { code, ...(state ? { state } : {}), ...(stops.requested ? { stop: stops.requested } : {}), ...(output ? { output } : {}) };
    } finally {
      watchdog.stop();
      stops.dispose();
      clearTimeout(timeoutTimer);
      clearInterval(outputWatch);
      this.options.signal?.removeEventListener("abort", onAbort);
    }
  }

  async dispose(): Promise<void> {
    // The agent's processes are gone (or killed by the forced removal); the container itself is
    // removed in the background. Bounded: if the engine does not answer, the orphan reaper removes it later.
    if (this.container) this.runner.background(withTimeout(this.container.remove(), 60_000, "the engine did not remove the agent's container within 60 s"));
    // The host rules only ever matched this container's address, which is gone: no need to wait.
    if (this.gate) this.runner.background(this.gate.dispose());
    // The agent is gone: its broker identities go too.
    await this.releaseShared();
  }
}

function streamEnd(stream: Duplex): Promise<void> {
  return new Promise<void>((res) => {
    stream.on("end", res);
    stream.on("close", res);
    stream.on("error", () => res());
  });
}
