/**
 * An agent run on Docker, its stages in the order they happen (the shared ones are in
 * run/run-stages.ts):
 *
 *   prepare → image → sandbox (claimed from the warm pool, or started now) ∥ gate → rules in force,
 *   checked → start line → wait → collect
 *
 * An agent in an image airlock built runs in a sandbox (sandbox/): a gated container started before
 * anything of the run reaches it, so a cold run starts its container while it sets up the gate and
 * mints broker identities, and a warm run claims one a pool started earlier. Any other image, and a
 * run with the network disabled, gets its container created for it with a gate container
 * (gate/container-gate.ts) or no network. Each stage hands the next what it needs; dispose()
 * releases everything, whatever happened.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Duplex } from "node:stream";
import { withTimeout } from "../../docker/client.js";
import { runLabels } from "../../docker/labels.js";
import type { EngineContainer } from "../../docker/engine.js";
import type { EgressGate } from "./gate/egress-gate.js";
import type { TakenGate } from "./gate/gate-container.js";
import { openEgressGate } from "./gate/open-gate.js";
import { RESOLV_CONF } from "../../gate/plan.js";
import type { ImageSet } from "../../images/images.js";
import { agentSpec, keeperSpec } from "./container-spec.js";
import { agentUser } from "../../run/output.js";
import { DEFAULT_OUTPUT_LIMITS, sameOutputLimits } from "../../run/output-volume.js";
import { toDockerEnv } from "../../run/env.js";
import type { PreparedRun } from "../../run/prepare.js";
import type { LogCapture } from "../../run/logs.js";
import type { AgentResult } from "../../run/result.js";
import { RunStages } from "../../run/run-stages.js";
import { streamEnd, watchUntilExit, type Started } from "./exit-watch.js";
import { chooseImage, type ChosenImage } from "./image-choice.js";
import { goLine } from "../../gate/protocol.js";
import { Sandbox, type SandboxShape } from "./sandbox/sandbox.js";
import { moveInto, removeSandboxFolder, type SandboxFolder } from "./sandbox/folder.js";
import type { PooledSandbox } from "./sandbox/pool.js";
import { startMode } from "./sandbox/start-mode.js";
import type { KeeperKind } from "./output-keepers.js";
import { sandboxShape, sandboxSpec } from "./sandbox/shape.js";
import type { DockerBackend } from "./docker-backend.js";
import type { RunRequest } from "../backend.js";

/** One Docker run's resources and state; dispose() releases everything, whatever happened. */
export class DockerRun extends RunStages {
  private gate?: EgressGate;
  private container?: EngineContainer;
  /** The output keeper (runs whose container ends with the agent): it holds /output until copied out. */
  private keeper?: EngineContainer;
  private keeperKind?: KeeperKind;
  /** The gate container, when it holds this run's /output (runs with the default output limits). */
  private outputHolder?: EngineContainer;
  private folder?: SandboxFolder;

  constructor(
    /** The engine's state this run uses: network, images, ready gates and sandboxes, output keepers. */
    private readonly docker: DockerBackend,
    r: RunRequest,
  ) {
    super(r);
  }

  async execute(): Promise<AgentResult> {
    const prepared = await this.prepare(async () => {
      await this.docker.engineReachable();
      if (this.docker.reapOrphans) await this.docker.reapOrphansOnce();
    });
    this.mark("prepared");
    const images = await this.docker.images((line) => this.emit({ type: "build", agent: this.name, line }));
    if (this.options.image) this.image = this.options.image;
    const image = await chooseImage(
      {
        docker: this.docker.docker,
        images,
        progress: (line) => this.emit({ type: "build", agent: this.name, line }),
        builds: this.docker.builds,
      },
      prepared,
      this.options.image,
    );
    this.image = image.label;
    this.mark("image");
    const expiresAt = Date.now() + prepared.policy.timeoutSeconds * 1000 + this.graceMs + 120_000;
    // Broker identities are minted while the sandbox starts and the gate is set up.
    const rights = this.mintRights(prepared);
    void rights.then(
      () => this.mark("rights"),
      () => {},
    );
    const started = await this.startAgent(prepared, image, images, expiresAt, rights);
    const exit = await watchUntilExit({
      engine: this.docker.engine,
      started,
      gate: this.gate!,
      policy: prepared.policy,
      graceMs: this.graceMs,
      output: {
        dir: this.outputDir,
        limits: outputLimits(prepared),
        holder: this.keeper ?? this.outputHolder ?? "sandbox",
      },
      captures: { stdout: this.stdout!, stderr: this.stderr! },
      name: this.name,
      phase: (phase, message) => this.phase(phase, message),
      ...(this.options.signal ? { signal: this.options.signal } : {}),
    });
    this.denied = exit.denied;
    for (const note of exit.outputNotes) this.warn(note);
    if (exit.copied?.written)
      this.copied = { files: exit.copied.written, bytes: exit.copied.bytes ?? 0, special: exit.copied.special ?? [] };
    await this.readBusDenials();
    return this.finish({
      code: exit.code,
      ...(exit.state?.oomKilled ? { oomKilled: true } : {}),
      ...(exit.stop ? { stop: exit.stop } : {}),
      ...(exit.output ? { output: exit.output } : {}),
    });
  }

  /**
   * The fastest safe way to an agent's first line, in order: a sandbox from the warm pool; a
   * container joined to a gate the runner keeps ready (its namespace exists already: no network to
   * set up); a sandbox started now. Other images, and runs without network, get a container of their
   * own with a gate container (or none).
   */
  private async startAgent(
    prepared: PreparedRun,
    image: ChosenImage,
    images: ImageSet,
    expiresAt: number,
    rights: Promise<Record<string, string>>,
  ): Promise<Started> {
    if (!image.airlocks || prepared.policy.network.disabled)
      return this.startWithGate(prepared, image, images, expiresAt, rights);
    const shape = sandboxShape(image.id, prepared.language, prepared.policy, prepared.user);
    const pooled = await this.claimPooled(shape, prepared, expiresAt);
    if (pooled) return this.startSandbox(prepared, image, images, expiresAt, rights, shape, pooled);
    const ended = this.docker.startBegan();
    try {
      const readyGate = this.docker.takeReadyGate();
      if (readyGate) {
        this.startup.how = "ready gate";
        return await this.startWithGate(prepared, image, images, expiresAt, rights, readyGate);
      }
      return await this.startSandbox(prepared, image, images, expiresAt, rights, shape);
    } finally {
      // The next run finds a gate namespace ready (a container joined to it starts faster than one with a network of its own).
      this.docker.keepGateReady(images.ids.gate);
      ended();
    }
  }

  /**
   * An image airlock built, in a sandbox: the pooled one, or one started now while the gate is set
   * up; its rules, then the agent's command line and variables (credentials included) go to its init
   * once the sandbox is up.
   */
  private async startSandbox(
    prepared: PreparedRun,
    image: ChosenImage,
    images: ImageSet,
    expiresAt: number,
    rights: Promise<Record<string, string>>,
    shape: SandboxShape,
    pooled?: PooledSandbox,
  ): Promise<Started> {
    const { language } = prepared;
    this.startup.how = pooled ? "pooled sandbox" : "new sandbox";
    let starting: Promise<Sandbox>;
    let bundled = Promise.resolve();
    // The gate, then the sandbox's streams into the run's captures and its rules into its stdin:
    // for a sandbox started now, before its start (so the init finds them as it comes up).
    let gate: EgressGate | undefined;
    const connect = async (sandbox: Sandbox, hostsPath: string) => {
      gate = this.gate = await this.openGate(prepared, image, images, expiresAt, hostsPath);
      this.mark("gate");
      sandbox.claim();
      const { stdout, stderr } = this.openCaptures(gate.intercept);
      this.pipeStreams(sandbox.stream, stdout, stderr);
      gate.beforeStart?.(sandbox.stream);
    };
    if (pooled) {
      const folder = (this.folder = pooled.folder);
      this.startup.mode = "warm";
      this.mark("claimed");
      this.container = pooled.sandbox.container;
      // The agent's code goes into the sandbox's folder while its rules are put in force (before the start line).
      // After the language's check, which reads the bundle where it was staged.
      const bundleDir = prepared.bundleDir;
      bundled = bundleDir ? image.checked.then(() => moveInto(bundleDir, folder.bundleDir)) : Promise.resolve();
      // Awaited before the start line; until then a rejection must not count as unhandled.
      bundled.catch(() => {});
      starting = connect(pooled.sandbox, folder.hostsFile).then(() => pooled.sandbox);
    } else {
      this.phase("starting", `starting ${this.name}'s sandbox`);
      // Bind sources must exist when the container is created; the gate writes the hosts file in place.
      const { hostsPath, resolvPath } = networkFiles(prepared);
      await Promise.all([writeFile(hostsPath, "", { mode: 0o644 }), writeResolvConf(resolvPath)]);
      const network = await this.docker.network();
      starting = Sandbox.start(
        this.docker.engine,
        sandboxSpec(shape, {
          name: `airlock-${this.runId}`,
          network: network.name,
          workspaceBinds: prepared.workspace.binds,
          ...(prepared.bundleDir ? { bundleDir: prepared.bundleDir } : {}),
          hostsFile: hostsPath,
          resolvConf: resolvPath,
          labels: runLabels(this.runId, "agent", this.name, expiresAt),
        }),
        {
          onCreated: (c) => ((this.container = c), this.mark("created")),
          beforeStart: (sandbox) => connect(sandbox, hostsPath),
          onStarted: () => this.mark("started"),
        },
      );
      // Awaited below; until then a rejection must not count as unhandled.
      starting.catch(() => {});
    }
    const sandbox = await starting;
    const argv = this.options.command ?? [...language.runtimeArgv, prepared.staged!.entry];
    const mode = startMode(language, argv, prepared.env);
    await gate!.open(sandbox.container, sandbox.stream, sandbox.exited, {
      line: async () => {
        // The language's checks (a Python agent's compile check) and the agent's code in place, before it may start.
        await Promise.all([image.checked, bundled]);
        return goLine(mode, argv, { ...prepared.env, ...(await rights) });
      },
      ...(pooled ? { state: pooled.state } : {}),
    });
    this.mark("released");
    return { container: sandbox.container, exited: sandbox.exited, streamEnded: sandbox.streamEnded };
  }

  /** A pooled sandbox this run can use, with its output folder moved into place; or none (the reason is in the result's startup). */
  private async claimPooled(
    shape: SandboxShape,
    prepared: PreparedRun,
    expiresAt: number,
  ): Promise<PooledSandbox | undefined> {
    const pool = this.docker.warmPool;
    if (!pool) return undefined;
    const cold = (why: string) => void (this.startup.coldBecause = why);
    // What a pooled sandbox mounts was fixed when it was created.
    if (prepared.workspace.binds.length)
      return cold("a working directory is mounted only into a container created for its run");
    const claim = await pool.claim(shape, expiresAt);
    if ("cold" in claim) return cold(claim.cold);
    // Its name says which run it is now (what `airlock cleanup` reads), in the background.
    this.docker.background(claim.pooled.sandbox.container.rename(`airlock-${this.runId}`));
    return claim.pooled;
  }

  /** Any other image, or no network: the container is created for this run, joined to a gate container's namespace (or none). */
  private async startWithGate(
    prepared: PreparedRun,
    image: ChosenImage,
    images: ImageSet,
    expiresAt: number,
    rights: Promise<Record<string, string>>,
    readyGate?: TakenGate,
  ): Promise<Started> {
    // A gate container holds an /output volume of the default limits (and the runner's agent user);
    // any other run gets an output keeper, started while the gate is set up.
    const user = agentUser();
    const gateHolds =
      !prepared.policy.network.disabled &&
      sameOutputLimits(outputLimits(prepared), DEFAULT_OUTPUT_LIMITS) &&
      prepared.user.uid === user.uid &&
      prepared.user.gid === user.gid;
    const keeper = gateHolds ? Promise.resolve() : this.startKeeper(prepared, images, expiresAt);
    // Awaited before the agent's container is created; until then a rejection must not count as unhandled.
    keeper.catch(() => {});
    const gate = (this.gate = await this.openGate(
      prepared,
      image,
      images,
      expiresAt,
      networkFiles(prepared).hostsPath,
      readyGate,
    ));
    this.mark("gate");
    await keeper;
    if (gateHolds && gate.network.mode === "gate-container")
      this.outputHolder = this.docker.engine.container(gate.network.gateId);
    else if (gateHolds) await this.startKeeper(prepared, images, expiresAt);
    await image.checked;
    Object.assign(prepared.env, await rights);
    return this.start(prepared, image, gate, expiresAt);
  }

  /** The run's gate: in the sandbox itself (its init), or a gate container (the `readyGate` it took, or any image airlock did not build). */
  private async openGate(
    prepared: PreparedRun,
    image: ChosenImage,
    images: ImageSet,
    expiresAt: number,
    hostsPath: string,
    readyGate?: TakenGate,
  ): Promise<EgressGate> {
    this.phase("gate", prepared.policy.network.disabled ? "network disabled" : "setting up the gate");
    return openEgressGate(
      {
        network: () => this.docker.network(),
        loopback: this.docker.loopback,
        gatePool: (img, net) => this.docker.gatePool(img, net),
        verifier: (img, labels) => this.docker.verifier(img, labels),
        background: (w) => this.docker.background(w),
      },
      {
        policy: prepared.policy,
        selfGated: image.airlocks && !readyGate,
        // A run that joined a gate kept ready: the runner tops its gates up once runs stop starting.
        ...(readyGate ? { readyGate } : {}),
        gateImage: images.ids.gate,
        user: prepared.user,
        runId: this.runId,
        hostsPath,
        holdSeconds: Math.ceil((expiresAt - Date.now()) / 1000),
        labels: runLabels(this.runId, "gate", this.name, expiresAt),
        ...(this.options.resolver ? { resolver: this.options.resolver } : {}),
        onPhase: (m) => this.phase("gate", m),
        onMark: (stage) => this.mark(stage),
      },
    );
  }

  /** The container that owns this run's /output volume and holds it until the runner copied it out: one kept ready, or one started now. */
  private async startKeeper(prepared: PreparedRun, images: ImageSet, expiresAt: number): Promise<void> {
    this.keeperKind = { image: images.ids.gate, user: prepared.user, limits: outputLimits(prepared) };
    const { keeper } = await this.docker.outputKeepers.take(this.keeperKind, expiresAt, async () => {
      const fresh = await this.docker.engine.createContainer(
        keeperSpec({
          name: `airlock-${this.runId}-output`,
          image: images.ids.gate,
          user: prepared.user,
          limits: outputLimits(prepared),
          holdSeconds: Math.ceil((expiresAt - Date.now()) / 1000),
          labels: runLabels(this.runId, "output", this.name, expiresAt),
        }),
      );
      this.keeper = fresh;
      await fresh.start();
      return fresh;
    });
    this.keeper = keeper;
  }

  /** Create the container, attach to it, start it, and let the gate put its rules in force. */
  private async start(
    prepared: PreparedRun,
    image: ChosenImage,
    gate: EgressGate,
    expiresAt: number,
  ): Promise<Started> {
    const o = this.options;
    const { policy } = prepared;
    this.phase("starting", `starting ${this.name}`);
    const { hostsPath, resolvPath } = networkFiles(prepared);
    await writeResolvConf(resolvPath);
    const { stdout, stderr } = this.openCaptures(gate.intercept);

    const spec = agentSpec({
      name: `airlock-${this.runId}`,
      image: image.id,
      network: gate.network,
      user: prepared.user,
      env: toDockerEnv(prepared.env),
      // In airlock's images (network disabled): the runtime runs the bundled agent, or the command replaces it.
      // Any other image keeps its own entrypoint, as `docker run IMAGE CMD` does.
      ...(image.airlocks ? { entrypoint: o.command ? [] : [...prepared.language.runtimeArgv] } : {}),
      cmd: o.command ?? [prepared.staged!.entry],
      workspaceBinds: prepared.workspace.binds,
      output: { limits: outputLimits(prepared), keeper: (this.keeper ?? this.outputHolder)!.id },
      ...(prepared.bundleDir ? { bundleDir: prepared.bundleDir } : {}),
      hostsFile: hostsPath,
      resolvConf: resolvPath,
      memoryBytes: policy.resources.memoryBytes,
      cpus: policy.resources.cpus,
      pids: policy.resources.pids,
      maxFileBytes: policy.resources.outputBytes,
      labels: runLabels(this.runId, "agent", this.name, expiresAt),
    });
    // The engine now and then loses a container's process between its create and its start ("cannot
    // start a stopped process"): such a container is replaced once. Its stream is read only once it
    // started (what it wrote meanwhile waits in the stream), so the captures see one container.
    let container: EngineContainer;
    let stream: Duplex;
    let exited: Promise<{ StatusCode?: number }>;
    for (let attempt = 1; ; attempt++) {
      container = this.container = await this.docker.engine.createContainer(spec);
      this.mark("created");
      stream = await container.attach({ stdin: gate.usesStdin });
      // "next-exit": a container that is created but not started yet counts as not running.
      exited = container.wait("next-exit");
      // Awaited by the exit watch; until then a rejection must not count as unhandled.
      exited.catch(() => {});
      try {
        await container.start();
        break;
      } catch (err) {
        if (attempt > 1 || !/cannot start a stopped process/.test(String((err as Error).message))) throw err;
        stream.destroy();
        // The container that could not start is replaced; a leftover is labelled and the orphan sweep removes it.
        await container.remove().catch(() => {});
      }
    }
    this.pipeStreams(stream, stdout, stderr);
    const streamEnded = streamEnd(stream);
    this.mark("started");
    await gate.open(container, stream, exited);
    this.mark("released");
    // The next run of this kind finds its output keeper started.
    if (this.keeperKind) this.docker.outputKeepers.refill(this.keeperKind);
    return { container, exited, streamEnded };
  }

  /** The container's multiplexed stream into the run's captures. */
  private pipeStreams(stream: Duplex, stdout: LogCapture, stderr: LogCapture): void {
    const outPipe = new PassThrough();
    const errPipe = new PassThrough();
    outPipe.pipe(stdout.writable());
    errPipe.pipe(stderr.writable());
    this.docker.engine.demux(stream, outPipe, errPipe);
  }

  async dispose(): Promise<void> {
    // The agent's processes are gone (or killed by the forced removal); the container itself is
    // removed in the background. Bounded: if the engine does not answer, the orphan reaper removes it later.
    const agentGone = this.container
      ? withTimeout(this.container.remove(), 60_000, "the engine did not remove the agent's container within 60 s")
      : Promise.resolve();
    this.docker.background(agentGone);
    // The keeper after the agent's container, which uses its volume (removed with the keeper).
    const keeper = this.keeper;
    if (keeper)
      this.docker.background(
        agentGone
          // However the agent's container went, what follows (removing the keeper) must run.
          .catch(() => {})
          .then(() => withTimeout(keeper.remove(), 60_000, "the engine did not remove the output keeper within 60 s")),
      );
    // The host rules only ever matched this container's address, which is gone: no need to wait. A
    // gate that holds this run's /output goes after the agent's container, which uses its volume (a
    // volume still in use stays behind when its container is removed).
    const gate = this.gate;
    if (gate)
      // However the agent's container went, the gate holding its /output goes after it.
      this.docker.background(this.outputHolder ? agentGone.catch(() => {}).then(() => gate.dispose()) : gate.dispose());
    // A pooled sandbox's folder.
    if (this.folder) this.docker.background(removeSandboxFolder(this.folder));
    // The agent is gone: its broker identities go too.
    await this.releaseShared();
  }
}

/** Where the run's /etc/hosts (the gate writes it) and /etc/resolv.conf are on the host. */
function networkFiles(prepared: PreparedRun): { hostsPath: string; resolvPath: string } {
  return { hostsPath: join(prepared.runDir, "hosts"), resolvPath: join(prepared.runDir, "resolv.conf") };
}

const writeResolvConf = (path: string) => writeFile(path, RESOLV_CONF, { mode: 0o644 });

const outputLimits = (prepared: PreparedRun) => ({
  bytes: prepared.policy.resources.outputBytes,
  entries: prepared.policy.resources.outputFiles,
});
