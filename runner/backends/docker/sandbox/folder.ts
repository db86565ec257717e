/**
 * The host folder of a pooled sandbox: what it mounts is fixed when its container is created, long
 * before its run is known, so each pooled sandbox gets a folder of its own whose contents the claim
 * fills in — the agent's bundle (/opt/agent/run), its /etc/hosts, its /etc/resolv.conf — and whose
 * empty output folder (/output) becomes the run's output folder by being moved into its place (a bind
 * mount follows the folder, not its path). Folders are named after their runner (host and pid), so a
 * runner that died leaves folders the next one removes.
 */
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readdir, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { dirname, join } from "node:path";
import { RESOLV_CONF } from "../../../gate/plan.js";
import type { AgentUser } from "../../../run/output.js";

export interface SandboxFolder {
  dir: string;
  bundleDir: string;
  outputDir: string;
  hostsFile: string;
  resolvConf: string;
}

/** Where pooled sandboxes' folders are made: $XDG_CACHE_HOME/airlock/sandboxes (else ~/.cache/...). */
export function defaultSandboxRoot(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "airlock", "sandboxes");
}

const owner = () => `${hostname()}-${process.pid}-`;

export async function createSandboxFolder(root: string, user: AgentUser): Promise<SandboxFolder> {
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(join(root, owner()));
  await chmod(dir, 0o755);
  const folder = { dir, bundleDir: join(dir, "bundle"), outputDir: join(dir, "output"), hostsFile: join(dir, "hosts"), resolvConf: join(dir, "resolv.conf") };
  await mkdir(folder.bundleDir, { mode: 0o755 });
  await mkdir(folder.outputDir, { mode: 0o755 });
  // Root's agents run as an unprivileged uid, which must be able to write /output.
  if (process.getuid?.() === 0) await chown(folder.outputDir, user.uid, user.gid);
  await writeFile(folder.hostsFile, "", { mode: 0o644 });
  await writeFile(folder.resolvConf, RESOLV_CONF, { mode: 0o644 });
  return folder;
}

/** Whether the folder is still as it was made: nothing in the bundle or output, no hosts yet. */
export async function folderUntouched(folder: SandboxFolder): Promise<boolean> {
  const [bundle, output, hosts] = await Promise.all([readdir(folder.bundleDir).catch(() => undefined), readdir(folder.outputDir).catch(() => undefined), stat(folder.hostsFile).catch(() => undefined)]);
  return bundle?.length === 0 && output?.length === 0 && hosts?.size === 0;
}

/**
 * Make the sandbox's /output the run's output folder: what is in `target` moves into the sandbox's
 * folder, which then takes target's place. Returns why it cannot (another filesystem, a mount point),
 * with everything put back, or undefined once done.
 */
export async function adoptOutput(folder: SandboxFolder, target: string): Promise<string | undefined> {
  const [here, there, parent] = await Promise.all([stat(folder.outputDir), lstat(target), stat(dirname(target))]);
  if (!there.isDirectory()) return `the output folder ${target} is not a folder`;
  if (there.dev !== parent.dev) return `the output folder ${target} is a mount point`;
  if (there.dev !== here.dev) return `the output folder ${target} is on another filesystem than the pool's folders (${dirname(folder.dir)}; set pool.dir to a folder beside it)`;
  const entries = await readdir(target);
  const moved: string[] = [];
  const putBack = async () => {
    for (const name of moved.reverse()) await rename(join(folder.outputDir, name), join(target, name)).catch(() => {});
  };
  try {
    for (const name of entries) {
      await rename(join(target, name), join(folder.outputDir, name));
      moved.push(name);
    }
    await chmod(folder.outputDir, there.mode & 0o7777);
    if (process.getuid?.() === 0) await chown(folder.outputDir, there.uid, there.gid);
    await rmdir(target);
  } catch (err) {
    await putBack();
    return `the output folder ${target} could not be moved into place (${(err as Error).message})`;
  }
  try {
    await rename(folder.outputDir, target);
  } catch (err) {
    await mkdir(target, { mode: there.mode & 0o7777 }).catch(() => {});
    await putBack();
    return `the output folder ${target} could not be moved into place (${(err as Error).message})`;
  }
  return undefined;
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
  await rm(folder.dir, { recursive: true, force: true }).catch(() => {});
}

/** Remove the folders of runners on this host that are gone. */
export async function sweepSandboxFolders(root = defaultSandboxRoot()): Promise<number> {
  const names = await readdir(root).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    const m = /^(.*)-(\d+)-[^-]+$/.exec(name);
    if (!m || m[1] !== hostname() || Number(m[2]) === process.pid || alive(Number(m[2]))) continue;
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
