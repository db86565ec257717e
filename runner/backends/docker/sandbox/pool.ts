/**
 * The warm pool: sandboxes (sandbox.ts) started ahead of need, per shape (image, runtime, user,
 * resources), so a run claims one that is already up instead of paying for a container start. A
 * pooled sandbox runs exactly one agent and is then removed; it is never reused. Before it is handed
 * out it is checked (Sandbox.check: still the process that was started, nothing run in it, its
 * configuration unchanged, silent, its folder empty); one that fails, dies, or is not claimed within
 * the idle lifetime is removed, and replaced while its shape is in use. Every container carries the
 * runner's labels, so a runner that dies leaves nothing the next cleanup does not remove.
 */
import { randomBytes } from "node:crypto";
import type { ContainerState, Engine } from "../engine/engine.js";
import { LABEL, ownerId } from "../../../labels.js";
import {
  createSandboxFolder,
  defaultSandboxRoot,
  folderUntouched,
  removeSandboxFolder,
  type SandboxFolder,
} from "./folder.js";
import { Sandbox, shapeKey, type SandboxShape } from "./sandbox.js";
import { sandboxSpec } from "./shape.js";

export interface WarmPoolOptions {
  /** Sandboxes kept ready per shape (image, runtime, user, resources). */
  size: number;
  /** A sandbox not claimed within this many seconds is removed; it is replaced only while runs of its shape keep coming. Default 300. */
  idleSeconds?: number;
  /** Where pooled sandboxes' folders go (default ~/.cache/airlock/sandboxes). */
  dir?: string;
}

/** Time, for tests: now, and a timer that can be cancelled. */
export interface PoolClock {
  now(): number;
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: PoolClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/** How long a claimed sandbox may still run: its label's deadline is this far past its idle lifetime. */
export const CLAIMED_LIFETIME_MS = 24 * 3600 * 1000;
const STARTS_AT_ONCE = 2;
/** How long after a claim its replacement starts: the claiming run's own start comes first. */
export const REFILL_DELAY_MS = 100;

export interface PooledSandbox {
  sandbox: Sandbox;
  folder: SandboxFolder;
  /** The container's state at the check that let it out. */
  state: ContainerState;
  /** Its labelled deadline. */
  expiresAt: number;
}

/** A sandbox waiting in the pool: no run that could outlive its deadline is given it. */
interface Entry extends Omit<PooledSandbox, "state"> {
  cancelRetire: () => void;
}

interface ShapeState {
  shape: SandboxShape;
  ready: Entry[];
  starting: number;
  /** How many to keep ready. */
  target: number;
  lastWanted: number;
  /** After a failed start, none is tried before this. */
  backoffUntil: number;
}

export interface PoolServices {
  engine: Engine;
  /** The airlock bridge's name (created when missing). */
  network(): Promise<string>;
  clock?: PoolClock;
}

export type Claim = { pooled: PooledSandbox } | { cold: string };

export class WarmPool {
  private readonly shapes = new Map<string, ShapeState>();
  private readonly clock: PoolClock;
  private readonly idleMs: number;
  private readonly root: string;
  private running = 0;
  private readonly queue: (() => void)[] = [];
  private readonly removals = new Set<Promise<void>>();
  private readonly startsDone = new Set<Promise<void>>();
  private closed = false;
  /** The engine's reports on pooled sandboxes (what they are for: Sandbox.noteEvent). */
  private watching?: Promise<(() => void) | undefined>;
  private readonly byId = new Map<string, Sandbox>();
  /** The last reason a sandbox could not be started (a cold run's `coldBecause` says it). */
  lastError?: string;

  constructor(
    private readonly services: PoolServices,
    readonly options: WarmPoolOptions,
  ) {
    this.clock = services.clock ?? systemClock;
    this.idleMs = (options.idleSeconds ?? 300) * 1000;
    this.root = options.dir ?? defaultSandboxRoot();
  }

  /** Sandboxes ready now, per shape key (for tests and the benchmark). */
  readyCount(shape?: SandboxShape): number {
    if (shape) return this.shapes.get(shapeKey(shape))?.ready.length ?? 0;
    return [...this.shapes.values()].reduce((n, s) => n + s.ready.length, 0);
  }

  /** Keep at least `count` sandboxes of this shape ready (a group that knows what it will run says so). */
  prepare(shape: SandboxShape, count = this.options.size): void {
    const state = this.stateOf(shape);
    state.target = Math.max(state.target, count);
    state.lastWanted = this.clock.now();
    this.fill(state);
  }

  /**
   * A checked sandbox of this shape that may live until `needUntil`, or why there is none. Either way
   * the shape is kept filled from now on.
   */
  async claim(shape: SandboxShape, needUntil: number): Promise<Claim> {
    if (this.closed) return { cold: "the pool is closed" };
    const state = this.stateOf(shape);
    state.lastWanted = this.clock.now();
    state.target = Math.max(state.target, this.options.size);
    let claimed = false;
    try {
      for (;;) {
        const entry = state.ready.shift();
        if (!entry) {
          const failed = this.lastError ? ` (the pool's last start failed: ${this.lastError})` : "";
          return {
            cold: state.starting
              ? "every pooled sandbox of this shape is taken (more are starting)"
              : `no pooled sandbox of this shape was ready${failed}`,
          };
        }
        if (entry.expiresAt < needUntil) {
          state.ready.unshift(entry);
          return { cold: "the run's timeout is longer than a pooled sandbox may live" };
        }
        entry.cancelRetire();
        const [{ problem, state: containerState }, untouched] = await Promise.all([
          entry.sandbox.check(),
          folderUntouched(entry.folder),
        ]);
        const why = problem ?? (untouched ? undefined : "its folder on the host was written to");
        if (why || !containerState) {
          this.discard(entry);
          continue;
        }
        claimed = true;
        this.byId.delete(entry.sandbox.container.id);
        return {
          pooled: { sandbox: entry.sandbox, folder: entry.folder, state: containerState, expiresAt: entry.expiresAt },
        };
      }
    } finally {
      // After a hit, not at once: starting a container takes the engine and the CPU from the run that
      // just claimed one. After a miss at once: that run starts its own, and the next should not.
      if (state.ready.length + state.starting === 0 && !claimed) this.fill(state);
      else this.clock.setTimer(() => this.fill(state), REFILL_DELAY_MS);
    }
  }

  /** A claimed sandbox the run could not use after all (before anything of the run reached it): ready again. */
  giveBack(shape: SandboxShape, pooled: PooledSandbox): void {
    const state = this.stateOf(shape);
    const entry: Entry = {
      sandbox: pooled.sandbox,
      folder: pooled.folder,
      expiresAt: pooled.expiresAt,
      cancelRetire: () => {},
    };
    if (this.closed || pooled.sandbox.isGone) {
      this.discard(entry);
      return;
    }
    this.addReady(state, entry);
  }

  /** Resolves when no sandbox is being started or removed (benchmarks settle on this). */
  async idle(): Promise<void> {
    while (this.startsDone.size || this.removals.size) await Promise.all([...this.startsDone, ...this.removals]);
  }

  /** Remove every pooled sandbox and start no more. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    for (const state of this.shapes.values()) for (const entry of state.ready.splice(0)) this.discard(entry);
    await this.idle();
    (await this.watching)?.();
  }

  private stateOf(shape: SandboxShape): ShapeState {
    const key = shapeKey(shape);
    let state = this.shapes.get(key);
    if (!state) {
      state = { shape, ready: [], starting: 0, target: 0, lastWanted: 0, backoffUntil: 0 };
      this.shapes.set(key, state);
    }
    return state;
  }

  private fill(state: ShapeState): void {
    if (this.closed || this.clock.now() < state.backoffUntil) return;
    while (state.ready.length + state.starting < state.target) {
      state.starting++;
      this.schedule(() => this.startOne(state));
    }
  }

  /** At most STARTS_AT_ONCE starts at a time: the engine's work must not crowd out the runs. */
  private schedule(task: () => Promise<void>): void {
    const run = () => {
      this.running++;
      const done = task().finally(() => {
        this.running--;
        this.startsDone.delete(done);
        this.queue.shift()?.();
      });
      this.startsDone.add(done);
    };
    if (this.running < STARTS_AT_ONCE) run();
    else this.queue.push(run);
  }

  private async startOne(state: ShapeState): Promise<void> {
    if (this.closed) {
      state.starting--;
      return;
    }
    let folder: SandboxFolder | undefined;
    let sandbox: Sandbox | undefined;
    const { shape } = state;
    try {
      await this.watchEngine();
      folder = await createSandboxFolder(this.root);
      const network = await this.services.network();
      const expiresAt = this.clock.now() + this.idleMs + CLAIMED_LIFETIME_MS;
      sandbox = await Sandbox.start(
        this.services.engine,
        sandboxSpec(shape, {
          name: `airlock-pool-${randomBytes(5).toString("hex")}`,
          network,
          workspaceBinds: [],
          bundleDir: folder.bundleDir,
          hostsFile: folder.hostsFile,
          resolvConf: folder.resolvConf,
          trustDir: folder.trustDir,
          refusalsDir: folder.refusalsDir,
          labels: poolLabels(expiresAt),
        }),
      );
      await sandbox.record();
      // A sandbox kept ready must not keep the runner's process alive (a claim refs it again).
      sandbox.unref();
      state.starting--;
      const entry: Entry = { sandbox, folder, expiresAt, cancelRetire: () => {} };
      if (this.closed) return this.discard(entry);
      this.addReady(state, entry);
      this.lastError = undefined;
    } catch (err) {
      state.starting--;
      this.lastError = err instanceof Error ? err.message : String(err);
      // Do not retry in a loop: the next claim (after a pause) tries again.
      state.backoffUntil = this.clock.now() + 5000;
      if (sandbox) this.discard({ sandbox, folder: folder!, expiresAt: 0, cancelRetire: () => {} });
      else if (folder) void removeSandboxFolder(folder);
    }
  }

  /** Once: what the engine reports about containers labelled as this pool's sandboxes. */
  private watchEngine(): Promise<unknown> {
    this.watching ??= (
      this.services.engine.watch?.([`${LABEL.role}=sandbox`, `${LABEL.run}=pool`, `${LABEL.owner}=${ownerId()}`], (e) =>
        this.byId.get(e.id)?.noteEvent(e.action),
      ) ?? Promise.resolve(undefined)
    )
      // Without the engine's events the pool inspects each sandbox before handing it out.
      .catch(() => undefined);
    return this.watching;
  }

  private addReady(state: ShapeState, entry: Entry): void {
    this.byId.set(entry.sandbox.container.id, entry.sandbox);
    state.ready.push(entry);
    // Retired when unclaimed for the idle lifetime; replaced only if the shape was wanted meanwhile.
    entry.cancelRetire = this.clock.setTimer(() => {
      const at = state.ready.indexOf(entry);
      if (at < 0) return;
      state.ready.splice(at, 1);
      this.discard(entry);
      if (this.clock.now() - state.lastWanted >= this.idleMs) state.target = 0;
      this.fill(state);
    }, this.idleMs);
    // One that dies while pooled is removed and replaced.
    entry.sandbox.exited.then(
      () => this.onDeath(state, entry),
      () => this.onDeath(state, entry),
    );
  }

  private onDeath(state: ShapeState, entry: Entry): void {
    const at = state.ready.indexOf(entry);
    if (at < 0) return;
    state.ready.splice(at, 1);
    entry.cancelRetire();
    this.discard(entry);
    this.fill(state);
  }

  private discard(entry: Entry): void {
    this.byId.delete(entry.sandbox.container.id);
    const done = Promise.all([entry.sandbox.remove(), removeSandboxFolder(entry.folder)]).then(() => {});
    this.removals.add(done);
    void done.finally(() => this.removals.delete(done));
  }
}

export function poolLabels(expiresAt: number): Record<string, string> {
  return {
    [LABEL.managed]: "true",
    [LABEL.role]: "sandbox",
    [LABEL.run]: "pool",
    [LABEL.owner]: ownerId(),
    [LABEL.expires]: String(expiresAt),
  };
}
