/**
 * A runner: the engine it talks to, and everything that outlives one run — gates kept ready, the
 * verifier of rules, the background removals of finished runs. `createRunner()` gives one with its
 * own settings; `runAgent()` and `runAgents()` use a default one per process.
 */
import { randomBytes } from "node:crypto";
import type Docker from "dockerode";
import { assertDockerReachable, dockerClient } from "./docker/client.js";
import { dockerEngine, type Engine } from "./docker/engine.js";
import { LABEL, ownerId } from "./docker/labels.js";
import { ensureNetwork } from "./docker/network.js";
import { GatePool, type TakenGate } from "./gate/gate-container.js";
import { loopbackMode, type LoopbackMode } from "./gate/host-side.js";
import { defaultVerifier, type Verifier } from "./gate/verify.js";
import { ensureImages, type ImageSet } from "./images/images.js";
import { gateSpec } from "./run/container-spec.js";
import { DEFAULT_OUTPUT_LIMITS } from "./run/output-volume.js";
import { runAgentWith, type RunAgentOptions } from "./run/run-agent.js";
import type { BackendName, ExecutionBackend } from "./backends/backend.js";
import { backendFromEnv, createBackend } from "./backends/registry.js";
import type { KubernetesOptions } from "./backends/kubernetes/config.js";
import type { AgentResult } from "./run/result.js";
import { WarmPool, type WarmPoolOptions } from "./backends/docker/sandbox/pool.js";
import { sandboxShape } from "./backends/docker/sandbox/shape.js";
import { OutputKeepers } from "./backends/docker/output-keepers.js";
import type { AgentLanguage } from "./languages/language.js";
import type { Policy } from "./policy/index.js";
import { agentUser } from "./run/output.js";

export const WARM_GATE_PREFIX = "airlock-warm-";
const GATE_IDLE_SECONDS = 30;
const ENGINE_CHECK_MS = 5000;

export interface RunnerOptions {
  /** Docker client (default: DOCKER_HOST or the local socket). */
  docker?: Docker;
  /** Engine used for agent containers (default: the Docker engine of `docker`). Unit tests pass a fake. */
  engine?: Engine;
  /** Gate containers kept ready for images airlock did not build (default AIRLOCK_GATE_POOL, else 1; 0: none). */
  gatePoolSize?: number;
  /** How localhost endpoints reach the host (default: kernel for a root runner, else forwarder; AIRLOCK_LOOPBACK). */
  loopback?: LoopbackMode;
  /** Images to use (default: airlock's own, built when missing). */
  images?: () => Promise<ImageSet>;
  /** Remove what crashed runners left (containers, host rules) before the first run (default true). */
  reapOrphans?: boolean;
  /** Where agents run unless a run says otherwise (default AIRLOCK_BACKEND, else "docker"). */
  backend?: BackendName;
  /** The cluster the kubernetes backend uses (default: from KUBECONFIG and AIRLOCK_K8S_*). */
  kubernetes?: KubernetesOptions;
  /**
   * Keep sandboxes started ahead of need, so runs start warm (Docker backend, images airlock built).
   * Off unless given (or AIRLOCK_POOL=size); `airlock up` turns it on. Each sandbox runs one agent
   * and is removed; see docs/WARM-POOL.md.
   */
  pool?: WarmPoolOptions | false;
}

export class Runner {
  readonly docker: Docker;
  readonly engine: Engine;
  readonly loopback: LoopbackMode;
  readonly reapOrphans: boolean;
  private gatePoolSize: number;
  private readonly pools = new Map<string, GatePool>();
  private readonly removals = new Set<Promise<unknown>>();
  private readonly customImages: (() => Promise<ImageSet>) | undefined;
  private readonly backends = new Map<BackendName, Promise<ExecutionBackend>>();
  private readonly defaultBackend: BackendName | undefined;
  private readonly kubernetesOptions: KubernetesOptions | undefined;
  private readonly poolOptions: WarmPoolOptions | undefined;
  private pool?: WarmPool;

  constructor(options: RunnerOptions = {}) {
    this.docker = options.docker ?? dockerClient();
    this.engine = options.engine ?? dockerEngine(this.docker);
    this.loopback = options.loopback ?? loopbackMode();
    this.gatePoolSize = options.gatePoolSize ?? Number(process.env.AIRLOCK_GATE_POOL ?? 1);
    this.customImages = options.images;
    this.reapOrphans = options.reapOrphans ?? true;
    this.defaultBackend = options.backend;
    this.kubernetesOptions = options.kubernetes;
    const fromEnv = Number(process.env.AIRLOCK_POOL ?? 0);
    this.poolOptions = options.pool === false ? undefined : (options.pool ?? (fromEnv > 0 ? { size: fromEnv } : undefined));
  }

  /** The warm pool of sandboxes, when this runner keeps one. */
  get warmPool(): WarmPool | undefined {
    if (!this.poolOptions || this.poolOptions.size <= 0) return undefined;
    this.pool ??= new WarmPool({ engine: this.engine, network: async () => (await ensureNetwork(this.docker)).name }, this.poolOptions);
    return this.pool;
  }

  /** The backend a run uses (its own choice, else the runner's, else AIRLOCK_BACKEND, else Docker). */
  async backend(name?: BackendName): Promise<ExecutionBackend> {
    const chosen = name ?? this.defaultBackend ?? backendFromEnv() ?? "docker";
    let backend = this.backends.get(chosen);
    if (!backend) {
      backend = createBackend(chosen, this, this.kubernetesOptions);
      this.backends.set(chosen, backend);
      backend.catch(() => this.backends.delete(chosen));
    }
    return backend;
  }

  private engineSeen?: { at: number; check: Promise<unknown> };

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
      check.catch(() => (this.engineSeen = undefined));
    }
    await this.engineSeen.check;
  }

  /** airlock's images (built when missing). */
  images(progress?: (line: string) => void): Promise<ImageSet> {
    return this.customImages ? this.customImages() : ensureImages(this.docker, progress);
  }

  /** Run one agent with this runner's engine, pools and settings. */
  runAgent(options: RunAgentOptions): Promise<AgentResult> {
    return runAgentWith(this, options);
  }

  /** How many gates to keep ready between runs (0: none). */
  setGatePoolSize(size: number): void {
    this.gatePoolSize = size;
  }

  /** The pool of gate containers for a gate image on a network. */
  gatePool(image: string, network: string): GatePool {
    const key = `${image}|${network}`;
    let pool = this.pools.get(key);
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
        this.gatePoolSize,
      );
      this.pools.set(key, pool);
    }
    return pool;
  }

  /**
   * Have `count` sandboxes started for agents of this policy and language (a group does, for agents
   * that wait for others: by the time they start, theirs is up). Needs the warm pool; best effort.
   */
  async prepareSandboxes(policy: Policy, language: AgentLanguage, count = 1): Promise<void> {
    const pool = this.warmPool;
    if (!pool || count <= 0 || policy.network.disabled) return;
    const images = await this.images();
    const built = await language.image({ docker: this.docker, images, progress: () => {} }, policy);
    pool.prepare(sandboxShape(built.id, language, policy, agentUser()), count);
  }

  private startsInFlight = 0;
  private gateWanted?: string;

  /**
   * Keep a gate ready for the next run (after a run that used one, or had none), unless this runner
   * keeps none. Not while other runs are starting: a gate's start would take the engine from theirs
   * (in a burst, one ready gate helps one run); the last of them to start asks for it.
   */
  keepGateReady(gateImage: string): void {
    if (this.gatePoolSize <= 0) return;
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
    this.background(ensureNetwork(this.docker).then((network) => this.gatePool(image, network.name).refill()));
  }

  /** Start `count` gates ahead of need (runAgents does, for agents in images airlock did not build). */
  async prepareGates(count: number): Promise<void> {
    if (count <= 0) return;
    const [images, network] = await Promise.all([this.images(), ensureNetwork(this.docker)]);
    this.gatePool(images.ids.gate, network.name).prepare(count);
  }

  /** Whether a gate container is started and waiting right now (tests and diagnostics; a run takes one with takeReadyGate). */
  gateReadyNow(): boolean {
    return [...this.pools.values()].some((p) => p.readyNow());
  }

  /** A gate container started and waiting right now, taken for one run (no other run counts on it), or undefined. */
  takeReadyGate(): TakenGate | undefined {
    for (const pool of this.pools.values()) {
      const taken = pool.takeReady();
      if (taken) return taken;
    }
    return undefined;
  }

  /** The check of a sandbox's rules from outside it. */
  verifier(gateImage: string, labels: Record<string, string>): Verifier {
    return defaultVerifier(this.docker, gateImage, labels);
  }

  /**
   * Work left to run on after a run returned (removing its containers and host rules): the result
   * does not wait for the engine's network teardown. A crash is covered by the orphan reaper.
   */
  background(work: Promise<unknown>): void {
    const done = work.catch(() => {}).finally(() => this.removals.delete(done));
    this.removals.add(done);
  }

  /** Resolves when the containers of every finished run are gone (the CLI waits for it before exiting). */
  async containersRemoved(): Promise<void> {
    while (this.removals.size) await Promise.all([...this.removals]);
  }

  /** Resolves when every pool's gates (and output keepers) being started are ready (benchmarks settle on this). */
  async gatesIdle(): Promise<void> {
    await Promise.all([...[...this.pools.values()].map((p) => p.idle()), this.pool?.idle(), this.keepers?.idle()]);
  }

  /** Output keepers kept ready for runs whose /output no gate holds (created on first use). */
  get outputKeepers(): OutputKeepers {
    this.keepers ??= new OutputKeepers(this.engine, (w) => this.background(w));
    return this.keepers;
  }
  private keepers?: OutputKeepers;

  /** Remove the gates, sandboxes and output keepers kept ready and wait for background removals. */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all([...pools.map((p) => p.close()), this.pool?.close(), this.keepers?.close()]);
    await this.containersRemoved();
    await Promise.all([...this.backends.values()].map((b) => b.then((backend) => backend.close(), () => {})));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export function createRunner(options: RunnerOptions = {}): Runner {
  return new Runner(options);
}

let shared: Runner | undefined;

/** The runner runAgent() and runAgents() use when none is given. */
export function defaultRunner(): Runner {
  shared ??= new Runner();
  return shared;
}
