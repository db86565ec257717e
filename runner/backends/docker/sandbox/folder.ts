/**
 * The host folder of a pooled sandbox: what it mounts is fixed when its container is created, long
 * before its run is known, so each pooled sandbox gets a folder of its own whose contents the claim
 * fills in — the agent's bundle (/opt/agent/run), its /etc/hosts, its /etc/resolv.conf, its trust files
 * (/etc/airlock) and the run's refusals so far (/run/airlock). (Its /output
 * is a volume of its own, copied out after the run.) Folders are named after their runner (host and
 * pid), so a runner that died leaves folders the next one removes.
 */
import { chmod, cp, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { RESOLV_CONF } from "../../../gate/plan.js";
import { sandboxCacheDir } from "../../../settings.js";

export interface SandboxFolder {
  dir: string;
  bundleDir: string;
  hostsFile: string;
  resolvConf: string;
  /** Mounted at /etc/airlock: empty until a run that terminates HTTPS puts its trust files there. */
  trustDir: string;
  /** Mounted at /run/airlock: the run's refusals so far, which the runner writes while the agent runs. */
  refusalsDir: string;
}

/** Where pooled sandboxes' folders are made: $XDG_CACHE_HOME/airlock/sandboxes (else ~/.cache/...). */
export function defaultSandboxRoot(): string {
  return sandboxCacheDir();
}

const owner = () => `${hostname()}-${process.pid}-`;

export async function createSandboxFolder(root: string): Promise<SandboxFolder> {
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(join(root, owner()));
  await chmod(dir, 0o755);
  const folder = {
    dir,
    bundleDir: join(dir, "bundle"),
    hostsFile: join(dir, "hosts"),
    resolvConf: join(dir, "resolv.conf"),
    trustDir: join(dir, "trust"),
    refusalsDir: join(dir, "refusals"),
  };
  await mkdir(folder.bundleDir, { mode: 0o755 });
  await mkdir(folder.trustDir, { mode: 0o755 });
  await mkdir(folder.refusalsDir, { mode: 0o755 });
  await writeFile(folder.hostsFile, "", { mode: 0o644 });
  await writeFile(folder.resolvConf, RESOLV_CONF, { mode: 0o644 });
  return folder;
}

/** Whether the folder is still as it was made: nothing in the bundle, no hosts yet. */
export async function folderUntouched(folder: SandboxFolder): Promise<boolean> {
  const [bundle, hosts] = await Promise.all([
    // A folder that cannot be read counts as touched (undefined), and the sandbox is not reused.
    readdir(folder.bundleDir).catch(() => undefined),
    // A file that cannot be read counts as touched (undefined), and the sandbox is not reused.
    stat(folder.hostsFile).catch(() => undefined),
  ]);
  return bundle?.length === 0 && hosts?.size === 0;
}

/** Move what is in `from` into `to` (a rename on one filesystem, else a copy). */
export async function moveInto(from: string, to: string): Promise<void> {
  const entries = await readdir(from);
  await Promise.all(
    entries.map(async (name) => {
      try {
        await rename(join(from, name), join(to, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
        await cp(join(from, name), join(to, name), { recursive: true, preserveTimestamps: true });
      }
    }),
  );
}

export async function removeSandboxFolder(folder: SandboxFolder): Promise<void> {
  // A leftover folder holds nothing of the agent's output; the next sweep of sandbox folders removes it.
  await rm(folder.dir, { recursive: true, force: true }).catch(() => {});
}

/** Remove the folders of runners on this host that are gone. */
export async function sweepSandboxFolders(root = defaultSandboxRoot()): Promise<number> {
  const names = await readdir(root).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    const m = /^(.*)-(\d+)-[^-]+$/.exec(name);
    if (!m || m[1] !== hostname() || Number(m[2]) === process.pid || alive(Number(m[2]))) continue;
    // A folder that resists is tried again by the next sweep.
    await rm(join(root, name), { recursive: true, force: true }).catch(() => {});
    removed++;
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
