/**
 * The NATS users file the runner owns: the runner's own login and one entry per live run, rewritten
 * whole (under a lock, by atomic rename) on every change, then the server is told to reload (SIGHUP)
 * and the runner waits until its monitoring endpoint says the new file is in force. The entries are
 * kept beside it as JSON (users.json), the file the runner reads; the .conf is what the server reads.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import type { NatsAdmin } from "./nats.js";

export interface NatsUserEntry {
  user: string;
  password: string;
  permissions?: {
    publish: { allow: string[] } | { deny: string[] };
    subscribe: { allow: string[] };
    allow_responses?: { max: number };
  };
}

const LOCK_STALE_MS = 10_000;
const RELOAD_TIMEOUT_MS = 5_000;

async function withLock<T>(file: string, work: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  for (let i = 0; ; i++) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // A runner that died holding it: take it over once it is old.
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) await rm(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, Math.min(2 + i, 20)));
    }
  }
  try {
    return await work();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** The server's last configuration load, as its monitoring endpoint reports it. */
async function configLoadTime(monitor: string): Promise<string> {
  const res = await fetch(`${monitor}/varz`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`NATS monitoring answered ${res.status} at ${monitor}/varz`);
  return String(((await res.json()) as { config_load_time?: string }).config_load_time ?? "");
}

function confText(entries: NatsUserEntry[]): string {
  // JSON is valid NATS configuration; every value is quoted, so nothing is read as a variable.
  return `# Written by airlock (the runner): its own login and one user per live run. Do not edit.\nusers = ${JSON.stringify(entries, null, 1)}\n`;
}

/** Change the users (a map by name, without the runner's own login), write, reload, and wait for the reload. */
export async function updateUsersFile(
  admin: NatsAdmin,
  change: (users: Map<string, NatsUserEntry>) => void,
): Promise<void> {
  const state = `${admin.users.replace(/\.conf$/, "")}.json`;
  await withLock(admin.users, async () => {
    const users = new Map<string, NatsUserEntry>();
    try {
      for (const u of JSON.parse(await readFile(state, "utf8")) as NatsUserEntry[]) users.set(u.user, u);
    } catch {
      // first use
    }
    const before = JSON.stringify([...users.values()]);
    change(users);
    const after = [...users.values()];
    if (
      JSON.stringify(after) === before &&
      (await stat(admin.users).then(
        () => true,
        () => false,
      ))
    )
      return;
    const write = async (file: string, text: string) => {
      await writeFile(`${file}.tmp`, text, { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    };
    await write(state, `${JSON.stringify(after, null, 1)}\n`);
    await write(admin.users, confText([{ user: admin.user, password: admin.password }, ...after]));
    const loaded = await configLoadTime(admin.monitor);
    const pid = Number((await readFile(admin.pid, "utf8")).trim());
    process.kill(pid, "SIGHUP");
    const deadline = Date.now() + RELOAD_TIMEOUT_MS;
    while ((await configLoadTime(admin.monitor)) === loaded) {
      if (Date.now() > deadline)
        throw new Error(`the NATS server (pid ${pid}) did not reload its users within ${RELOAD_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 2));
    }
  });
}
