/**
 * A folder's files as a Pod gets them (in the run's ConfigMap): regular files only, the hidden
 * secrets of a workspace left out, within what a ConfigMap holds, or an error that says so.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { RunOptionsError } from "../../errors.js";
import { CONFIGMAP_BUDGET, type PodFile } from "./pod-spec.js";

const SKIP_DIRS = new Set(["node_modules", ".venv", "venv", "__pycache__", ".git"]);

export async function podFiles(dir: string, hidden: string[], what: string): Promise<PodFile[]> {
  const files: PodFile[] = [];
  let bytes = 0;
  const isHidden = (rel: string) => hidden.some((h) => rel === h || rel.startsWith(`${h}/`));
  const walk = async (at: string): Promise<void> => {
    for (const e of await readdir(at, { withFileTypes: true })) {
      const full = join(at, e.name);
      const rel = relative(dir, full);
      if (isHidden(rel)) continue;
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) await walk(full);
        continue;
      }
      if (!e.isFile()) continue;
      const [content, info] = await Promise.all([readFile(full), stat(full)]);
      bytes += content.length;
      if (bytes > CONFIGMAP_BUDGET) {
        throw new RunOptionsError(
          `${what} is larger than ${Math.round(CONFIGMAP_BUDGET / 1024)} KiB, which is what a Pod gets through a ConfigMap on the kubernetes backend`,
          "keep the agent's files (and workingDir) small, or put large inputs on a broker or in the image",
        );
      }
      files.push({ path: rel, content, mode: info.mode & 0o111 ? 0o755 : 0o644 });
    }
  };
  await walk(dir);
  return files;
}
