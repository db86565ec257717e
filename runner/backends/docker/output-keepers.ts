/**
 * Output keepers kept ready: a run whose container ends with its agent and that has no gate
 * container to hold its /output (a run without network, or limits other than the defaults) needs an
 * output keeper (container-spec.ts keeperSpec), and starting one is a container start on the
 * run's path. The runner (its owner) keeps one started per kind of keeper after the first run that
 * needed it, the way it keeps a gate ready; a run takes it and the next is started once that run's
 * own container is up. One not taken within 30 s is removed, and close() removes them all; a runner
 * that died leaves them to the orphan reaper (their owner label). A keeper kept ready holds an empty
 * volume and nothing of any run.
 */
import { randomBytes } from "node:crypto";
import type { Engine, EngineContainer } from "./engine/engine.js";
import { LABEL, ownerId } from "../../labels.js";
import { keeperSpec } from "./container-spec.js";
import { startOrRemove, startReplacingLost } from "./engine/lost-start.js";
import type { AgentUser } from "../../run/output.js";
import type { OutputLimits } from "../../run/output-volume.js";

/** How long a ready keeper holds at most: a run that needs longer gets one of its own. */
const READY_HOLD_SECONDS = 24 * 3600;
/** A keeper kept ready and not taken for this long is removed (as an idle gate exits). */
const READY_IDLE_MS = 30_000;
/** The name of a keeper kept ready (one taken for a run keeps it). */
export const READY_KEEPER_PREFIX = "airlock-keeper-";

export interface KeeperKind {
  image: string;
  user: AgentUser;
  limits: OutputLimits;
}

interface Ready {
  keeper: Promise<EngineContainer | undefined>;
  holdsUntil: number;
  idle: NodeJS.Timeout;
}

export class OutputKeepers {
  private readonly ready = new Map<string, Ready>();
  private closed = false;

  constructor(
    private readonly engine: Engine,
    private readonly background: (work: Promise<unknown>) => void,
  ) {}

  /** A started keeper of `kind` that holds until `needUntil`: the one kept ready, else one started now with `fresh`. */
  async take(
    kind: KeeperKind,
    needUntil: number,
    fresh: () => Promise<EngineContainer>,
  ): Promise<{ keeper: EngineContainer; ready: boolean }> {
    const key = keyOf(kind);
    const waiting = this.ready.get(key);
    this.ready.delete(key);
    if (waiting) clearTimeout(waiting.idle);
    let kept = waiting && waiting.holdsUntil > needUntil ? await waiting.keeper : undefined;
    // Only one still running holds its volume (a stopped one's would be mounted afresh, empty).
    if (
      kept &&
      !(await kept.inspect().then(
        (s) => s.running && !s.paused,
        () => false,
      ))
    )
      kept = undefined;
    if (!kept && waiting) this.background(waiting.keeper.then((k) => k?.remove()));
    return kept ? { keeper: kept, ready: true } : { keeper: await fresh(), ready: false };
  }

  /** Start the next keeper of `kind` (after a run took one, once its own container is up). */
  refill(kind: KeeperKind): void {
    const key = keyOf(kind);
    if (this.closed || this.ready.has(key)) return;
    const holdsUntil = Date.now() + READY_HOLD_SECONDS * 1000;
    const keeper = this.start(kind).then(
      (k) => k,
      () => undefined,
    );
    // Not taken within the idle lifetime: removed (the timer does not keep the process alive).
    const idle = setTimeout(() => {
      if (this.ready.get(key)?.keeper !== keeper) return;
      this.ready.delete(key);
      this.background(keeper.then((k) => k?.remove()));
    }, READY_IDLE_MS);
    idle.unref();
    this.ready.set(key, { keeper, holdsUntil, idle });
  }

  private start(kind: KeeperKind): Promise<EngineContainer> {
    return startReplacingLost(() => this.startOnce(kind));
  }

  private async startOnce(kind: KeeperKind): Promise<EngineContainer> {
    const keeper = await this.engine.createContainer(
      keeperSpec({
        name: `${READY_KEEPER_PREFIX}${randomBytes(5).toString("hex")}`,
        image: kind.image,
        user: kind.user,
        limits: kind.limits,
        holdSeconds: READY_HOLD_SECONDS,
        labels: {
          [LABEL.managed]: "true",
          [LABEL.role]: "output",
          [LABEL.run]: "pool",
          [LABEL.owner]: ownerId(),
          [LABEL.expires]: String(Date.now() + (READY_HOLD_SECONDS + 3600) * 1000),
        },
      }),
    );
    await startOrRemove(keeper);
    return keeper;
  }

  /** Resolves when every keeper being started is ready. */
  async idle(): Promise<void> {
    await Promise.all([...this.ready.values()].map((r) => r.keeper));
  }

  /** Remove the keepers kept ready (idempotent). */
  async close(): Promise<void> {
    this.closed = true;
    const ready = [...this.ready.values()];
    this.ready.clear();
    for (const r of ready) clearTimeout(r.idle);
    // Closing: a keeper that resists removal is labelled and the orphan sweep removes it.
    await Promise.all(ready.map((r) => r.keeper.then((k) => k?.remove()).catch(() => {})));
  }
}

const keyOf = (k: KeeperKind) => JSON.stringify([k.image, k.user.uid, k.user.gid, k.limits.bytes, k.limits.entries]);
