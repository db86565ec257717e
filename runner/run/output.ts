/**
 * The host side of /output: the caller's output folder, checked and made before the run. The agent
 * never sees it: its /output is a volume of its own (run/output-volume.ts), copied in after the run
 * by the runner itself (run/output-tar.ts), so what lands there is the calling user's already.
 */
import { lstat, mkdir } from "node:fs/promises";
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
      throw new RunOptionsError(
        `output directory ${dir} exists and is ${info.isSymbolicLink() ? "a symbolic link" : "a file"}`,
        "choose another --output path, or move that file away",
      );
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    await mkdir(dir, { recursive: true });
  }
}
