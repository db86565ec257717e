/**
 * The agent's own refusals while it runs: a folder mounted read-only at /run/airlock in the sandbox
 * (a host folder on Docker; on a Pod, a volume the runner writes over exec), where the runner
 * rewrites `refusals.jsonl` (the same entries the result will carry) every few seconds (Docker; a
 * Pod only when asked, an exec being a round trip through the API server) and whenever the agent
 * asks (a control line; `ctx.denials()` in both runtimes does that and waits for
 * `refusals.answered` to list its request's id). The agent reads what the
 * gate, the egress proxy and the brokers said about it; it cannot add, hide or change an entry,
 * since only the runner writes there. Requests are coalesced — one refresh runs at a time and at
 * most one waits — so an agent that asks in a loop costs one refresh at a time, each bounded.
 */
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BusDenial } from "../bus/kind.js";
import type { DeniedConnection } from "../gate/denied.js";
import { withTimeout } from "../util/with-timeout.js";
import { allRefusals, refusalKey, toJsonLines, type Refusal } from "./refusals.js";
import { liveRefusalsSetting } from "../settings.js";

/** How often the file is brought up to date without being asked. */
export const REFRESH_EVERY_MS = 2000;
/** A source that does not answer within this is left out of that refresh. */
const SOURCE_TIMEOUT_MS = 2000;
/** How long after an agent's request its refresh begins (see ask()). */
export const SETTLE_MS = 250;
/** Request ids are short tokens; anything else is not a request. */
const ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface RefusalSources {
  /** The gate and the egress proxy: what they refused so far. */
  gate?: () => Promise<DeniedConnection[]>;
  /** The brokers: what they refused the run's identities so far. */
  bus?: () => Promise<BusDenial[]>;
}

/** Where the backend puts the files the sandbox sees at /run/airlock: each one replaced whole. */
export interface RefusalSink {
  write(files: { name: "refusals.jsonl" | "refusals.answered"; content: string }[]): Promise<void>;
}

/** A host folder the sandbox mounts (Docker): each file written beside and renamed into place. */
export function folderSink(dir: string): RefusalSink {
  return {
    async write(files) {
      for (const f of files) {
        const path = join(dir, f.name);
        await writeFile(`${path}.tmp`, f.content, { mode: 0o644 });
        await rename(`${path}.tmp`, path);
      }
    },
  };
}

export class RefusalFeed {
  private sink?: RefusalSink;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** Ids waiting for the next refresh (bounded: a refresh answers them all). */
  private readonly waiting = new Set<string>();
  private again = false;
  /** Requests still in their settling moment. */
  private asked = 0;
  private stopped = false;

  /** What was refused at the last refresh that told `onChange` (rule and resource of each entry). */
  private told = new Set<string>();

  /** `onChange`: called after a refresh that found an entry the last one did not have. */
  constructor(
    private readonly sources: RefusalSources,
    private readonly onChange?: (refusals: Refusal[]) => void,
  ) {}

  /**
   * Where the sandbox sees /run/airlock, once the run knows it: written now, then refreshed every
   * `everyMs` (0: only when asked) until stopped. Requests that came before are answered by the
   * first refresh. With AIRLOCK_LIVE_REFUSALS=0 the run keeps no live list: nothing is written.
   */
  async attach(sink: RefusalSink, everyMs = REFRESH_EVERY_MS): Promise<void> {
    if (this.stopped || this.sink || !liveRefusalsSetting()) return;
    this.sink = sink;
    // A sink that cannot be written leaves the agent without a live list; the result has every entry anyway.
    await this.write([], [], []).catch(() => {});
    if (everyMs > 0) {
      this.timer = setInterval(() => this.request(), everyMs);
      this.timer.unref();
    }
    if (this.waiting.size) this.request();
  }

  /**
   * The agent asks for its refusals: answered by a refresh that begins a moment later, since a
   * broker that logs its refusals writes the line a little after it told the client (RabbitMQ:
   * ~0.1 s), and an agent asks right after it was told.
   */
  ask(id: string): void {
    if (this.stopped || !ID.test(id) || this.waiting.size + this.asked >= 16) return;
    this.asked++;
    setTimeout(() => {
      this.asked--;
      this.waiting.add(id);
      this.request();
    }, SETTLE_MS).unref();
  }

  /** Bring the file up to date soon (and answer the requests waiting). */
  request(): void {
    if (this.stopped || !this.sink) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.refresh().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.request();
      }
    });
  }

  /** Stop refreshing (idempotent); waits for a refresh under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  private async refresh(): Promise<void> {
    const answering = [...this.waiting];
    this.waiting.clear();
    const read = async <T>(source: (() => Promise<T[]>) | undefined): Promise<T[]> =>
      source ? withTimeout(source(), SOURCE_TIMEOUT_MS, "no answer").catch(() => [] as T[]) : [];
    const [gate, bus] = await Promise.all([read(this.sources.gate), read(this.sources.bus)]);
    // A refresh that cannot write leaves the last file in place; the result has the final list anyway.
    await this.write(gate, bus, answering).catch(() => {});
  }

  private async write(gate: DeniedConnection[], bus: BusDenial[], answered: string[]): Promise<void> {
    if (!this.sink) return;
    const refusals = allRefusals(gate, bus, new Date().toISOString());
    const keys = new Set(refusals.map(refusalKey));
    if ([...keys].some((k) => !this.told.has(k))) {
      this.told = keys;
      this.onChange?.(refusals);
    }
    // Whole files, each replaced at once: a reader never sees half of one. The list first, then the answer.
    await this.sink.write([
      { name: "refusals.jsonl", content: toJsonLines(refusals) },
      ...(answered.length ? [{ name: "refusals.answered" as const, content: `${answered.join("\n")}\n` }] : []),
    ]);
  }
}
