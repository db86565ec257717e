/**
 * A sandbox: a gated agent container of an image airlock built, created and started before anything
 * about its agent is known. Its init denies every packet, starts the language runtime on standby, and
 * waits on stdin for the run's rules and then its start line (images/agent/airlock-init.sh). A run
 * either claims one a warm pool started earlier (pool.ts) or starts one itself as soon as it knows the
 * image, while it prepares everything else.
 *
 * What the container holds before the claim is the same for every run of its shape: nothing secret,
 * nothing of any agent. check() says whether it is still exactly what was started: running, the same
 * process, no exec into it, its configuration unchanged and not a byte written.
 */
import { startReplacingLost } from "../engine/lost-start.js";
import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import { withTimeout } from "../../../util/with-timeout.js";
import type { ContainerState, Engine, EngineContainer } from "../engine/engine.js";
import { streamEnd } from "../exit-watch.js";

/** Engine events that only read a container. */
const READ_ONLY_ACTIONS = new Set(["top", "archive-path", "export", "health_status"]);

/** What makes sandboxes interchangeable: a run can use any sandbox of its shape. */
export interface SandboxShape {
  /** The image's ID (airlock built it). */
  image: string;
  /** The runtime started on standby (empty: none; the agent's command line is started afresh). */
  standby: readonly string[];
  user: { uid: number; gid: number };
  memoryBytes: number;
  cpus: number;
  pids: number;
  /** The size and entry count of its /output (a tmpfs volume of its own; no file larger than the size: RLIMIT_FSIZE). */
  output: { bytes: number; entries: number };
}

export function shapeKey(shape: SandboxShape): string {
  return JSON.stringify([
    shape.image,
    shape.standby,
    shape.user.uid,
    shape.user.gid,
    shape.memoryBytes,
    shape.cpus,
    shape.pids,
    shape.output.bytes,
    shape.output.entries,
  ]);
}

export class Sandbox {
  private wroteEarly = false;
  private tampered?: string;
  private attaches = 0;
  private gone = false;
  private claimed = false;
  /** What inspect() said right after the start: what check() compares with. */
  private started?: ContainerState;

  private constructor(
    readonly container: EngineContainer,
    readonly stream: Duplex,
    /** Resolves when the container exits ("next-exit": counted from before the start). */
    readonly exited: Promise<{ StatusCode?: number }>,
    readonly streamEnded: Promise<void>,
  ) {
    const onData = () => {
      if (!this.claimed) this.wroteEarly = true;
    };
    stream.on("data", onData);
    this.detach = () => stream.off("data", onData);
    exited.then(
      () => (this.gone = true),
      () => (this.gone = true),
    );
  }

  private readonly detach: () => void;

  /** Create, attach (stdin too: the init reads its rules there), start. `beforeStart` may claim it and write its rules to stdin first. */
  static async start(
    engine: Engine,
    spec: Docker.ContainerCreateOptions,
    options: {
      beforeStart?: (sandbox: Sandbox) => Promise<void>;
      onCreated?: (container: EngineContainer) => void;
      onStarted?: () => void;
    } = {},
  ): Promise<Sandbox> {
    // A container whose process the engine lost before its start is replaced once (the name is free again once it is removed).
    const sandbox = await startReplacingLost(async () => {
      const container = await engine.createContainer(spec);
      options.onCreated?.(container);
      const stream = await container.attach({ stdin: true });
      // "next-exit": a container that is created but not started yet counts as not running.
      const exited = container.wait("next-exit");
      // Awaited when the sandbox is watched; until then a rejection must not count as unhandled.
      exited.catch(() => {});
      const started = new Sandbox(container, stream, exited, streamEnd(stream));
      try {
        await options.beforeStart?.(started);
        await container.start();
      } catch (err) {
        stream.destroy();
        // A leftover is labelled and the orphan sweep removes it.
        await container.remove().catch(() => {});
        throw err;
      }
      return started;
    });
    options.onStarted?.();
    return sandbox;
  }

  /** Record what the container looks like now (a pooled sandbox does, once started). */
  async record(): Promise<void> {
    this.started = await withTimeout(
      this.container.inspect(),
      15_000,
      "the engine did not answer an inspect within 15 s",
    );
  }

  /**
   * Why this sandbox must not be handed out, or undefined when it is still exactly what was started;
   * with the container's state (the run needs its address and pid).
   */
  async check(): Promise<{ problem?: string; state?: ContainerState }> {
    if (this.gone) return { problem: "it exited" };
    if (this.tampered) return { problem: this.tampered };
    if (this.wroteEarly) return { problem: "it wrote output before it was claimed" };
    if (!this.started) return { problem: "it was never inspected after its start" };
    // No answer means the sandbox is not handed out (handled below).
    const now = await withTimeout(this.container.inspect(), 5000, "no inspect within 5 s").catch(() => undefined);
    if (!now) return { problem: "the engine did not answer an inspect" };
    const was = this.started;
    if (!now.running) return { problem: "it is not running" };
    if (now.paused) return { problem: "it is paused" };
    if (now.pid !== was.pid || now.startedAt !== was.startedAt) return { problem: "it was restarted" };
    if (now.execs > 0) return { problem: "something was run in it (docker exec)" };
    if (now.config !== was.config) return { problem: "its configuration changed (docker update)" };
    return { state: now };
  }

  /**
   * What the engine reported about this container. Before the claim, anything but airlock's own
   * create, attach and start, or a look (top, a copy out of it), means someone else touched it (an
   * exec, another attach, a copy into it, an update, a pause, a kill, ...): it is never handed out.
   */
  noteEvent(action: string): void {
    if (this.claimed) return;
    if (action === "create" || action === "start") return;
    // Looking changes nothing: a process list, a copy out of it.
    if (READ_ONLY_ACTIONS.has(action)) return;
    if (action === "attach" && ++this.attaches === 1) return;
    this.tampered ??= `the engine reported "${action}" on it before its claim`;
  }

  /** Hand the streams to the run: from here on, what the container writes is the run's. */
  claim(): void {
    this.claimed = true;
    this.detach();
    (this.stream as Duplex & { ref?: () => void }).ref?.();
  }

  /** Let the process exit while this sandbox waits (pooled). */
  unref(): void {
    (this.stream as Duplex & { unref?: () => void }).unref?.();
  }

  get isGone(): boolean {
    return this.gone;
  }

  /** Remove it (bounded; the orphan reaper covers a runner that dies first). */
  remove(): Promise<void> {
    this.stream.destroy();
    return withTimeout(this.container.remove(), 60_000, "the engine did not remove a sandbox within 60 s").catch(
      () => {},
    );
  }
}
