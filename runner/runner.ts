/**
 * A runner: its settings, the backends its runs use, and the work that finishes after a run returned.
 * What outlives a run on one engine (network, images, ready gates and sandboxes) belongs to its
 * Docker backend (backends/docker/docker-backend.ts), so each runner keeps its own, per engine.
 * `createRunner()` gives one with its own settings; `runAgent()` and `runAgents()` use a default one
 * per process.
 */
import { EgressCa } from "./run/egress-ca.js";
import type Docker from "dockerode";
import { dockerClient } from "./backends/docker/engine/client.js";
import { dockerEngine, type Engine } from "./backends/docker/engine/engine.js";
import { loopbackMode, type LoopbackMode } from "./backends/docker/gate/host-side.js";
import type { ImageSet } from "./images/images.js";
import { runOne, type RunOptions } from "./run/run-agent.js";
import type { BackendName, ExecutionBackend } from "./backends/backend.js";
import { backendFromEnv, createBackend } from "./backends/registry.js";
import type { KubernetesOptions } from "./backends/kubernetes/config.js";
import type { AgentResult } from "./run/result.js";
import type { WarmPool, WarmPoolOptions } from "./backends/docker/sandbox/pool.js";
import { DockerBackend } from "./backends/docker/docker-backend.js";
import type { AgentLanguage } from "./languages/language.js";
import type { Policy } from "./policy/index.js";
import { gatePoolSetting, warmPoolSetting } from "./settings.js";
import { BrokerSweeps } from "./bus/rights.js";
import { RecentKafkaClusters } from "./bus/kafka-preflight.js";

export { WARM_GATE_PREFIX } from "./backends/docker/docker-backend.js";

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

/** One agent's run: what it runs and under which policy (RunOptions), and on which runner and backend. */
export interface RunAgentOptions extends RunOptions {
  /** The runner (engine, gate pools, settings) to run with. Default: one per process. */
  runner?: Runner;
  /** Where the agent runs: "docker" (default) or "kubernetes" (a Pod; the runner's kubernetes settings say which cluster). */
  backend?: BackendName;
}

export class Runner {
  readonly docker: Docker;
  private readonly options: RunnerOptions;
  private readonly removals = new Set<Promise<unknown>>();
  private readonly backends = new Map<BackendName, Promise<ExecutionBackend>>();
  private docker_?: DockerBackend;
  /** The brokers this runner swept of crashed runners' identities (once each, before its first run there). */
  private readonly brokerSweeps = new BrokerSweeps();
  /** Sweep what crashed runners left before the first run, on each backend. */
  private readonly reapOrphans: boolean;
  /** What the Kafka clusters its runs used advertised, for 30 s (the preflight's answer). */
  private readonly kafkaClusters = new RecentKafkaClusters();
  /** The CA of the HTTPS its gates terminate: made on first use, rotated before it ends, its key never written. */
  private readonly egressCa = new EgressCa();

  constructor(options: RunnerOptions = {}) {
    this.options = options;
    this.docker = options.docker ?? dockerClient();
    this.reapOrphans = options.reapOrphans ?? true;
  }

  /** The Docker backend of this runner (its engine's network, images, and what it keeps ready), created on first use. */
  get dockerBackend(): DockerBackend {
    if (!this.docker_) {
      const fromEnv = warmPoolSetting();
      const pool =
        this.options.pool === false ? undefined : (this.options.pool ?? (fromEnv > 0 ? { size: fromEnv } : undefined));
      this.docker_ = new DockerBackend({
        docker: this.docker,
        engine: this.options.engine ?? dockerEngine(this.docker),
        loopback: this.options.loopback ?? loopbackMode(),
        gatePoolSize: this.options.gatePoolSize ?? gatePoolSetting(),
        reapOrphans: this.reapOrphans,
        ...(this.options.images ? { images: this.options.images } : {}),
        ...(pool ? { pool } : {}),
        background: (work) => this.background(work),
      });
    }
    return this.docker_;
  }

  /** The backend a run uses (its own choice, else the runner's, else AIRLOCK_BACKEND, else Docker). */
  async backend(name?: BackendName): Promise<ExecutionBackend> {
    const chosen = name ?? this.options.backend ?? backendFromEnv() ?? "docker";
    let backend = this.backends.get(chosen);
    if (!backend) {
      backend = createBackend(chosen, {
        docker: () => this.dockerBackend,
        kubernetes: this.options.kubernetes,
        reapOrphans: this.reapOrphans,
      });
      this.backends.set(chosen, backend);
      backend.catch(() => this.backends.delete(chosen));
    }
    return backend;
  }

  /** Run one agent with this runner's engine, pools and settings. */
  runAgent(options: RunAgentOptions): Promise<AgentResult> {
    return runOne(options, async (request) => (await this.backend(options.backend)).createRun(request), {
      background: (work) => this.background(work),
      brokerSweeps: this.brokerSweeps,
      kafkaClusters: this.kafkaClusters,
      egressCa: this.egressCa,
    });
  }

  /** airlock's images on this runner's engine (built when missing); the Kubernetes backend builds them here too. */
  images(progress?: (line: string) => void): Promise<ImageSet> {
    return this.dockerBackend.images(progress);
  }

  /** The warm pool of sandboxes, when this runner keeps one. */
  get warmPool(): WarmPool | undefined {
    return this.dockerBackend.warmPool;
  }

  /** Have `count` sandboxes started for agents of this policy and language (needs the warm pool; best effort). */
  prepareSandboxes(policy: Policy, language: AgentLanguage, count = 1): Promise<void> {
    return this.dockerBackend.prepareSandboxes(policy, language, count);
  }

  /** Start `count` gates ahead of need (runAgents does, for agents in images airlock did not build). */
  prepareGates(count: number): Promise<void> {
    return this.dockerBackend.prepareGates(count);
  }

  /** Whether a gate container is started and waiting right now (tests and diagnostics). */
  gateReadyNow(): boolean {
    return this.docker_?.gateReadyNow() ?? false;
  }

  /**
   * Work left to run on after a run returned (removing its containers and host rules): the result
   * does not wait for the engine's network teardown. A crash is covered by the orphan reaper.
   */
  background(work: Promise<unknown>): void {
    // Its failure is the background work's own to report (each caller bounds and explains it); here it only must not go unhandled.
    const done = work.catch(() => {}).finally(() => this.removals.delete(done));
    this.removals.add(done);
  }

  /** Resolves when the containers of every finished run are gone (the CLI waits for it before exiting). */
  async containersRemoved(): Promise<void> {
    while (this.removals.size) await Promise.all([...this.removals]);
  }

  /** Resolves when every pool's gates (and output keepers) being started are ready (benchmarks settle on this). */
  async gatesIdle(): Promise<void> {
    await this.docker_?.idle();
  }

  /** Remove the gates, sandboxes and output keepers kept ready, wait for background removals, close every backend. */
  async close(): Promise<void> {
    await this.docker_?.close();
    await this.containersRemoved();
    // A backend that never came up has nothing to close.
    await Promise.all(
      [...this.backends.values()].map((b) =>
        b.then(
          (backend) => backend.close(),
          () => {},
        ),
      ),
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Run one agent: with `options.runner`, else the default runner of this process. */
export function runAgent(options: RunAgentOptions): Promise<AgentResult> {
  return (options.runner ?? defaultRunner()).runAgent(options);
}

/** Resolves when the containers of every finished run of the default runner are gone. */
export function containersRemoved(): Promise<void> {
  return defaultRunner().containersRemoved();
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
