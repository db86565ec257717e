/**
 * The host side of /output: the caller's output folder, checked and made before the run (the agent
 * never sees it: its /output is a volume of its own, run/output-volume.ts, copied in after the run),
 * and listed after, without following links, with every entry given to the calling user.
 */
import { lstat, mkdir, readdir, lchown, chown } from "node:fs/promises";
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

export async function prepareOutputDir(dir: string): Promise<void> {
  try {
    const info = await lstat(dir);
    if (!info.isDirectory()) {
      throw new RunOptionsError(`output directory ${dir} exists and is ${info.isSymbolicLink() ? "a symbolic link" : "a file"}`, "choose another --output path, or move that file away");
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    await mkdir(dir, { recursive: true });
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
