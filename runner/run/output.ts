/**
 * The host side of /output: prepared before the run so the agent's user can write it, and
 * collected after, without following links, so files end up owned by the calling user and
 * nothing outside the output directory is read or written.
 */
import { lstat, mkdir, readdir, lchown, chown, chmod } from "node:fs/promises";
import type { Dirent } from "node:fs";
import { join, relative } from "node:path";
import { RunOptionsError } from "../errors.js";

/** uid:gid the agent runs as: the caller's own, or (for root) the image's unprivileged user. */
export const SANDBOX_UID = 10001;

export interface AgentUser {
  uid: number;
  gid: number;
}

export function agentUser(): AgentUser {
  const uid = process.getuid?.() ?? SANDBOX_UID;
  const gid = process.getgid?.() ?? SANDBOX_UID;
  return uid === 0 ? { uid: SANDBOX_UID, gid: SANDBOX_UID } : { uid, gid };
}

export async function prepareOutputDir(dir: string, user: AgentUser): Promise<void> {
  try {
    const info = await lstat(dir);
    if (!info.isDirectory()) {
      throw new RunOptionsError(`output directory ${dir} exists and is ${info.isSymbolicLink() ? "a symbolic link" : "a file"}`, "choose another --output path, or move that file away");
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    await mkdir(dir, { recursive: true });
  }
  // Root runs the agent as an unprivileged uid: hand it the folder, and what an earlier run left in it,
  // for the run (given back afterwards). Links are changed themselves, never followed.
  if (process.getuid?.() === 0) {
    await chown(dir, user.uid, user.gid);
    await chmod(dir, 0o755);
    await walkEntries(dir, (full) => lchown(full, user.uid, user.gid).catch(() => {}));
  }
}

/** Visit every entry below `dir`, depth first, without following links. */
async function walkEntries(dir: string, visit: (full: string, entry: Dirent) => Promise<unknown>): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [] as Dirent[]);
  for (const entry of entries) {
    const full = join(dir, entry.name);
    await visit(full, entry);
    if (entry.isDirectory()) await walkEntries(full, visit);
  }
}

export interface SkippedEntry {
  path: string;
  kind: "symlink" | "fifo" | "socket" | "device" | "other";
}

export interface CollectedOutput {
  /** Regular files, relative to the output folder. */
  files: string[];
  /** Entries that are not regular files or folders; listed, never followed or read. */
  skipped: SkippedEntry[];
  bytes: number;
}

function kindOf(entry: Dirent): SkippedEntry["kind"] {
  if (entry.isSymbolicLink()) return "symlink";
  if (entry.isFIFO()) return "fifo";
  if (entry.isSocket()) return "socket";
  if (entry.isBlockDevice() || entry.isCharacterDevice()) return "device";
  return "other";
}

export interface OutputUsage {
  /** What the host really spends: the disk blocks of every entry (files, folders, links). */
  bytes: number;
  /** Entries (inodes) below the folder. */
  entries: number;
  /** True when the walk stopped early because a limit was passed. */
  over: boolean;
}

/**
 * What the agent's output costs the host, without following links: blocks (not apparent sizes,
 * so empty files, folders and long links count) and entries. The walk stops as soon as a limit is
 * passed, so checking a tree that is far over its limit stays cheap.
 */
export async function outputUsage(dir: string, limits: { bytes: number; entries: number }): Promise<OutputUsage> {
  const usage: OutputUsage = { bytes: 0, entries: 0, over: false };
  const walk = async (at: string): Promise<void> => {
    const entries = await readdir(at, { withFileTypes: true }).catch(() => [] as Dirent[]);
    for (const entry of entries) {
      if (usage.over) return;
      const full = join(at, entry.name);
      const info = await lstat(full).catch(() => undefined);
      usage.entries++;
      usage.bytes += info ? info.blocks * 512 : 0;
      if (usage.bytes > limits.bytes || usage.entries > limits.entries) {
        usage.over = true;
        return;
      }
      if (entry.isDirectory()) await walk(full);
    }
  };
  await walk(dir);
  return usage;
}

/** The run's error when the output is over the policy's limits, else undefined. */
export function outputLimitProblem(usage: OutputUsage, limits: { bytes: number; entries: number }): string | undefined {
  if (!usage.over) return undefined;
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (usage.entries > limits.entries) return `output limit exceeded: more than ${limits.entries} entries in the output folder (resources.outputFiles)`;
  return `output limit exceeded: more than ${mib(limits.bytes)} on disk in the output folder, counting ${usage.entries} entries so far (resources.output allows ${mib(limits.bytes)})`;
}

/**
 * List what the agent left below `dir` and give every entry back to the calling user. Nothing is
 * opened or followed: links are reported, not resolved, and lchown changes the link, never its target.
 */
export async function collectOutput(dir: string): Promise<CollectedOutput> {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  const files: string[] = [];
  const skipped: SkippedEntry[] = [];
  let bytes = 0;
  await walkEntries(dir, async (full, entry) => {
    if (uid === 0) await lchown(full, 0, gid ?? 0).catch(() => {});
    if (entry.isDirectory()) return;
    if (entry.isFile()) {
      files.push(relative(dir, full));
      bytes += (await lstat(full).catch(() => ({ size: 0 }))).size;
    } else skipped.push({ path: relative(dir, full), kind: kindOf(entry) });
  });
  if (uid === 0) await chown(dir, 0, gid ?? 0).catch(() => {});
  return { files: files.sort(), skipped: skipped.sort((a, b) => a.path.localeCompare(b.path)), bytes };
}
