/**
 * The Docker backend: each agent in its own container on one Docker engine, gated by airlock's init
 * or a gate container (gate/ here). It owns everything that outlives a run on that engine — the
 * airlock network, the images, the one-time sweep of what crashed runners left, gate containers and
 * sandboxes kept ready, output keepers, the engine check — so two runners on two engines share
 * nothing. One per runner (Runner.dockerBackend), created on first use; close() releases it all.
 */
import { randomBytes } from "node:crypto";
import type Docker from "dockerode";
import type { CleanupReport as BackendCleanupReport, ExecutionBackend, RunRequest } from "../backend.js";
import { assertDockerReachable } from "./engine/client.js";
import { cleanup, type CleanupReport } from "./cleanup.js";
import type { Engine } from "./engine/engine.js";
import { LABEL, ownerId } from "../../labels.js";
import { ensureNetwork, type AirlockNetwork } from "./network.js";
import { GatePool, type TakenGate } from "./gate/gate-container.js";
import type { LoopbackMode } from "./gate/host-side.js";
import { defaultVerifier, type Verifier } from "./gate/verify.js";
import { ImageBuilds } from "../../images/builds.js";
import { Remembered } from "../../util/remembered.js";
import { ensureImages, type ImageSet } from "../../images/images.js";
import type { AgentLanguage } from "../../languages/language.js";
import type { Policy } from "../../policy/index.js";
import { gateSpec } from "./container-spec.js";
import { agentUser } from "../../run/output.js";
import { DEFAULT_OUTPUT_LIMITS } from "../../run/output-volume.js";
import { DockerRun } from "./docker-run.js";
import { OutputKeepers } from "./output-keepers.js";
import { WarmPool, type WarmPoolOptions } from "./sandbox/pool.js";
import { sandboxShape } from "./sandbox/shape.js";

export const WARM_GATE_PREFIX = "airlock-warm-";
const GATE_IDLE_SECONDS = 30;
const ENGINE_CHECK_MS = 5000;

export interface DockerBackendOptions {
  docker: Docker;
  /** Used for agent containers (the Docker engine of `docker`; unit tests pass a fake). */
  engine: Engine;
  loopback: LoopbackMode;
  gatePoolSize: number;
  /** Images to use instead of airlock's own (tests). */
  images?: () => Promise<ImageSet>;
  reapOrphans: boolean;
  pool?: WarmPoolOptions;
  /** Work that may finish after a run returned (the runner waits for it before it closes). */
  background(work: Promise<unknown>): void;
}

export class DockerBackend implements ExecutionBackend {
  readonly name = "docker" as const;
  readonly docker: Docker;
  readonly engine: Engine;
  readonly loopback: LoopbackMode;
  readonly reapOrphans: boolean;
  /** The language images and package layers asked for on this engine. */
  readonly builds = new ImageBuilds();
  private readonly gatePools = new Map<string, GatePool>();
  private warm?: WarmPool;
  private keepers?: OutputKeepers;
  private readonly networkReady = new Remembered<AirlockNetwork>();
  private readonly imagesReady = new Remembered<ImageSet>();
  private reaped?: Promise<CleanupReport>;
  private engineSeen?: { at: number; check: Promise<unknown> };
  private startsInFlight = 0;
  private gateWanted?: string;

  constructor(private readonly options: DockerBackendOptions) {
    this.docker = options.docker;
    this.engine = options.engine;
    this.loopback = options.loopback;
    this.reapOrphans = options.reapOrphans;
  }

  createRun(request: RunRequest): DockerRun {
    return new DockerRun(this, request);
  }

  background(work: Promise<unknown>): void {
    this.options.background(work);
  }

  /** The airlock network on this engine (created when missing), looked up once. */
  network(): Promise<AirlockNetwork> {
    return this.networkReady.get(() => ensureNetwork(this.docker));
  }

  /** airlock's images on this engine (built when missing), looked up once. */
  images(progress?: (line: string) => void): Promise<ImageSet> {
    if (this.options.images) return this.options.images();
    return this.imagesReady.get(() => ensureImages(this.docker, progress));
  }

  /** Before this backend's first run: remove what crashed runners left on this engine. */
  reapOrphansOnce(): Promise<CleanupReport> {
    // A sweep that fails is not the run's failure: the next `airlock cleanup` (or runner) tries again.
    this.reaped ??= cleanup(this.docker).catch(() => ({ containersRemoved: [], networkRemoved: false }));
    return this.reaped;
  }

  /**
   * Whether the engine answers (a friendly DockerUnavailableError if not), asked at most every few
   * seconds: a run that follows closely on another does not wait for the question again. (An engine
   * that went away meanwhile fails the run's first request, which is explained the same way.)
   */
  async engineReachable(): Promise<void> {
    const now = Date.now();
    if (!this.engineSeen || now - this.engineSeen.at > ENGINE_CHECK_MS) {
      const check = assertDockerReachable(this.docker);
      this.engineSeen = { at: now, check };
      // A failed check is asked again next time, not remembered; the caller sees the failure.
      check.catch(() => (this.engineSeen = undefined));
    }
    await this.engineSeen.check;
  }

  /** The warm pool of sandboxes, when this runner keeps one. */
  get warmPool(): WarmPool | undefined {
    const options = this.options.pool;
    if (!options || options.size <= 0) return undefined;
    this.warm ??= new WarmPool({ engine: this.engine, network: async () => (await this.network()).name }, options);
    return this.warm;
  }

  /**
   * Have `count` sandboxes started for agents of this policy and language (a group does, for agents
   * that wait for others: by the time they start, theirs is up). Needs the warm pool; best effort.
   */
  async prepareSandboxes(policy: Policy, language: AgentLanguage, count = 1): Promise<void> {
    const pool = this.warmPool;
    if (!pool || count <= 0 || policy.network.disabled) return;
    const images = await this.images();
    const built = await language.image(
      { docker: this.docker, images, progress: () => {}, builds: this.builds },
      policy,
    );
    pool.prepare(sandboxShape(built.id, language, policy, agentUser()), count);
  }

  /** The pool of gate containers for a gate image on a network. */
  gatePool(image: string, network: string): GatePool {
    const key = `${image}|${network}`;
    let pool = this.gatePools.get(key);
    if (!pool) {
      pool = new GatePool(
        this.docker,
        () =>
          gateSpec({
            name: `${WARM_GATE_PREFIX}${randomBytes(5).toString("hex")}`,
            image,
            network,
            idleSeconds: GATE_IDLE_SECONDS,
            output: { limits: DEFAULT_OUTPUT_LIMITS, user: agentUser() },
            labels: {
              [LABEL.managed]: "true",
              [LABEL.role]: "gate",
              [LABEL.run]: "pool",
              [LABEL.owner]: ownerId(),
              // The owner's liveness decides orphans; a taken gate holds only as long as its run allows.
              [LABEL.expires]: String(Date.now() + 7 * 24 * 3600 * 1000),
            },
          }),
        network,
        this.options.gatePoolSize,
      );
      this.gatePools.set(key, pool);
    }
    return pool;
  }

  /**
   * Keep a gate ready for the next run (after a run that used one, or had none), unless this runner
   * keeps none. Not while other runs are starting: a gate's start would take the engine from theirs
   * (in a burst, one ready gate helps one run); the last of them to start asks for it.
   */
  keepGateReady(gateImage: string): void {
    if (this.options.gatePoolSize <= 0) return;
    this.gateWanted = gateImage;
    if (this.startsInFlight === 0) this.refillGate();
  }

  /** A run's container is being started (until the returned function is called). */
  startBegan(): () => void {
    this.startsInFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.startsInFlight === 0 && this.gateWanted) this.refillGate();
    };
  }

  private refillGate(): void {
    const image = this.gateWanted!;
    this.gateWanted = undefined;
    this.background(this.network().then((network) => this.gatePool(image, network.name).refill()));
  }

  /** Start `count` gates ahead of need (runAgents does, for agents in images airlock did not build). */
  async prepareGates(count: number): Promise<void> {
    if (count <= 0) return;
    const [images, network] = await Promise.all([this.images(), this.network()]);
    this.gatePool(images.ids.gate, network.name).prepare(count);
  }

  /** Whether a gate container is started and waiting right now (tests and diagnostics; a run takes one with takeReadyGate). */
  gateReadyNow(): boolean {
    return [...this.gatePools.values()].some((p) => p.readyNow());
  }

  /** A gate container started and waiting right now, taken for one run (no other run counts on it), or undefined. */
  takeReadyGate(): TakenGate | undefined {
    for (const pool of this.gatePools.values()) {
      const taken = pool.takeReady();
      if (taken) return taken;
    }
    return undefined;
  }

  /** The check of a sandbox's rules from outside it. */
  verifier(gateImage: string, labels: Record<string, string>): Verifier {
    return defaultVerifier(this.docker, gateImage, labels);
  }

  /** Output keepers kept ready for runs whose /output no gate holds (created on first use). */
  get outputKeepers(): OutputKeepers {
    this.keepers ??= new OutputKeepers(this.engine, (w) => this.background(w));
    return this.keepers;
  }

  /** Resolves when every pool's gates (and output keepers) being started are ready (benchmarks settle on this). */
  async idle(): Promise<void> {
    await Promise.all([...[...this.gatePools.values()].map((p) => p.idle()), this.warm?.idle(), this.keepers?.idle()]);
  }

  async cleanup({ all }: { all?: boolean }): Promise<BackendCleanupReport> {
    const report = await cleanup(this.docker, { all: Boolean(all), network: Boolean(all) });
    if (report.networkRemoved) this.networkReady.forget();
    return {
      removed: [
        ...report.containersRemoved.map((name) => ({ kind: "container", name })),
        ...(report.networkRemoved ? [{ kind: "network", name: "airlock" }] : []),
      ],
    };
  }

  /** Remove the gates, sandboxes and output keepers kept ready. Idempotent. */
  async close(): Promise<void> {
    const pools = [...this.gatePools.values()];
    this.gatePools.clear();
    await Promise.all([...pools.map((p) => p.close()), this.warm?.close(), this.keepers?.close()]);
  }
}
