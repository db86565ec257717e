/**
 * Pairs started the SDK's way: each agent from its own script (`python3 consumer.py & python3
 * producer.py`), so no run file says who waits for whom. On publish/subscribe buses (Redis channels,
 * NATS subjects, MQTT topics) a message published before the subscription is in place is lost, so
 * a run that may publish on a name waits, before it starts, for every run on this machine that may
 * subscribe to that name and registered before it or within PAIR_WINDOW_MS after it, until that
 * run is ready (its subscription is in place: the SDK shim reports it) or has ended. Queues, logs
 * and lists (RabbitMQ, Kafka, Redis keys) keep what was sent, so they need no ordering.
 *
 * Runs meet in a folder of small files, one per run (its pid, when it registered, the names it may
 * publish and subscribe to, whether it is ready); a file whose process is gone counts as ended. Two
 * runs that each publish what the other subscribes to do not wait for each other forever: only the
 * later one waits. Every wait is bounded by the caller's limit.
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { AirlockError } from "../errors.js";
import type { PolicyInput } from "../policy/index.js";

export const PAIR_WINDOW_MS = 1500;
const POLL_MS = 100;

/** Names a run may publish and subscribe to on pub/sub buses, as "kind|name" ("name*" for a prefix). */
export interface PubSubNames {
  publishes: string[];
  subscribes: string[];
}

interface Entry extends PubSubNames {
  id: string;
  pid: number;
  at: number;
  ready: boolean;
  name: string;
}

const PUBSUB_KINDS = ["redis", "nats", "mqtt"] as const;

/** The pub/sub names of a policy's rights; names with {run} or {agent} are the run's own and never pair. */
export function pubSubNames(policy: Pick<PolicyInput, "bus">): PubSubNames {
  const out: PubSubNames = { publishes: [], subscribes: [] };
  const bus = (policy.bus ?? {}) as Record<string, Record<string, unknown> | undefined>;
  for (const kind of PUBSUB_KINDS)
    for (const side of ["publish", "subscribe"] as const) {
      const list = bus[kind]?.[side];
      if (!Array.isArray(list)) continue;
      for (const item of list) {
        const name = typeof item === "string" ? item : (item as { topic?: string })?.topic;
        if (typeof name === "string" && !name.includes("{"))
          (side === "publish" ? out.publishes : out.subscribes).push(`${kind}|${name}`);
      }
    }
  return out;
}

/** Whether two "kind|name" entries can name the same channel (a trailing * is a prefix; MQTT's # too). */
export function overlaps(a: string, b: string): boolean {
  const prefix = (s: string) => (s.endsWith("*") || s.endsWith("#") ? s.slice(0, -1) : undefined);
  const [pa, pb] = [prefix(a), prefix(b)];
  if (pa === undefined && pb === undefined) return a === b;
  if (pa !== undefined && pb !== undefined) return pa.startsWith(pb) || pb.startsWith(pa);
  return pa !== undefined ? b.startsWith(pa) : a.startsWith(pb!);
}

const anyOverlap = (xs: string[], ys: string[]) => xs.some((x) => ys.some((y) => overlaps(x, y)));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Per user: $XDG_RUNTIME_DIR (the user's own) when set, else a folder of the user's in the temp folder. */
export function defaultPairsDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, "airlock-pairs") : join(tmpdir(), `airlock-pairs-${userInfo().uid}`);
}

/** The folder is trusted only if it is this user's own, a real folder, and closed to everyone else. */
async function checkOwnFolder(dir: string): Promise<void> {
  const s = await lstat(dir);
  const uid = process.getuid?.();
  if (!s.isDirectory() || (uid !== undefined && s.uid !== uid) || (s.mode & 0o077) !== 0)
    throw new AirlockError(
      "PAIRS_DIR_UNSAFE",
      `${dir} is not a folder of this user's that only it can open (another user could make runs wait or skip waiting)`,
      { fix: `remove it (rm -rf ${dir}); airlock creates it again with mode 700` },
    );
}

export interface RendezvousOptions {
  dir?: string;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class Rendezvous {
  private constructor(
    private readonly dir: string,
    private readonly me: Entry,
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {}

  /** Register this run (when it has pub/sub names at all; otherwise nobody waits for it, and it waits for nobody). */
  static async join(
    name: string,
    names: PubSubNames,
    options: RendezvousOptions = {},
  ): Promise<Rendezvous | undefined> {
    if (!names.publishes.length && !names.subscribes.length) return undefined;
    const dir = options.dir ?? defaultPairsDir();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await checkOwnFolder(dir);
    const now = options.now ?? Date.now;
    const sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    const me: Entry = {
      id: `${process.pid}-${randomBytes(4).toString("hex")}`,
      pid: process.pid,
      at: now(),
      ready: false,
      name,
      ...names,
    };
    const r = new Rendezvous(dir, me, now, sleep);
    await r.write();
    return r;
  }

  private async write(): Promise<void> {
    const tmp = join(this.dir, `.${this.me.id}.tmp`);
    await writeFile(tmp, JSON.stringify(this.me), { mode: 0o600 });
    await rename(tmp, join(this.dir, `${this.me.id}.json`));
  }

  private async peers(): Promise<Entry[]> {
    const files = (await readdir(this.dir).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
    const entries: Entry[] = [];
    for (const f of files.slice(0, 1000)) {
      const text = await readFile(join(this.dir, f), "utf8").catch(() => ""); // gone meanwhile: that run ended
      try {
        const e = JSON.parse(text.slice(0, 64 * 1024)) as Entry;
        if (e.id !== this.me.id && typeof e.pid === "number" && alive(e.pid)) entries.push(e);
      } catch {
        // Half-written or not ours: skipped (files are written whole and renamed into place).
      }
    }
    return entries;
  }

  /** The runs this one must wait for now (see the top comment). */
  private mustWaitFor(peers: Entry[]): Entry[] {
    const me = this.me;
    return peers.filter(
      (c) =>
        !c.ready &&
        c.at <= me.at + PAIR_WINDOW_MS &&
        anyOverlap(c.subscribes, me.publishes) &&
        !(anyOverlap(me.subscribes, c.publishes) && c.at > me.at),
    );
  }

  /**
   * Wait until every subscriber this run publishes to is ready or gone; returns their names. Gives
   * up (and returns) at `limitMs`, or when `signal` aborts.
   */
  async waitForSubscribers(limitMs: number, signal?: AbortSignal): Promise<string[]> {
    if (!this.me.publishes.length) return [];
    const waited = new Set<string>();
    const end = this.now() + limitMs;
    for (;;) {
      const pending = this.mustWaitFor(await this.peers());
      for (const p of pending) waited.add(p.name);
      const inWindow = this.now() < this.me.at + PAIR_WINDOW_MS;
      if ((!pending.length && !inWindow) || this.now() >= end || signal?.aborted) return [...waited];
      await this.sleep(POLL_MS);
    }
  }

  async markReady(): Promise<void> {
    if (this.me.ready) return;
    this.me.ready = true;
    await this.write();
  }

  async leave(): Promise<void> {
    await rm(join(this.dir, `${this.me.id}.json`), { force: true });
  }
}
