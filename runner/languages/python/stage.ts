/**
 * A Python agent goes into the container as source: the agent file, the .py modules beside it and
 * the packages (folders with __init__.py) it may import from there, copied into the run's bundle
 * folder (mounted read-only at /opt/agent/run). Nothing else in its folder is copied: no data files,
 * no .env, no virtualenv.
 */
import { copyFile, mkdir, readdir, stat } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { AgentSourceError } from "../../errors.js";
import { checkAgentFile } from "../agent-file.js";

const MAX_FILES = 500;
const MAX_BYTES = 20 * 1024 * 1024;
const SKIP_DIRS = new Set(["__pycache__", "node_modules", "venv", "env", "site-packages", "dist", "build"]);

export interface StagedPython {
  /** Host path → path inside the bundle folder, for every copied .py file. */
  files: { host: string; staged: string }[];
  /** The entry's path inside the container. */
  entry: string;
}

async function isPackage(dir: string): Promise<boolean> {
  return stat(join(dir, "__init__.py")).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** The .py files of `dir` and of its packages, recursively. */
async function pythonSources(dir: string, root: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue;
    const full = join(dir, entry.name);
    if (entry.isFile() && entry.name.endsWith(".py")) out.push(full);
    else if (entry.isDirectory() && !SKIP_DIRS.has(entry.name) && (await isPackage(full)))
      await pythonSources(full, root, out);
    if (out.length > MAX_FILES) {
      throw new AgentSourceError(
        relative(process.cwd(), root) || root,
        `has more than ${MAX_FILES} Python files beside the agent`,
        "put the agent (and the modules it imports) in a folder of its own, and its dependencies in packages.pip",
      );
    }
  }
}

export async function stagePython(agentFile: string, bundleDir: string): Promise<StagedPython> {
  await checkAgentFile(agentFile);
  const agent = resolve(agentFile);
  const root = dirname(agent);
  const sources: string[] = [];
  await pythonSources(root, root, sources);
  if (!sources.includes(agent)) sources.push(agent);
  let bytes = 0;
  const files: StagedPython["files"] = [];
  for (const host of sources) {
    bytes += (await stat(host)).size;
    if (bytes > MAX_BYTES)
      throw new AgentSourceError(
        relative(process.cwd(), root) || root,
        `has more than ${MAX_BYTES / 1024 / 1024} MB of Python beside the agent`,
        "put the agent in a folder of its own, and large dependencies in packages.pip",
      );
    const staged = join(bundleDir, relative(root, host));
    await mkdir(dirname(staged), { recursive: true, mode: 0o755 });
    await copyFile(host, staged);
    files.push({ host, staged });
  }
  return { files, entry: `/opt/agent/run/${basename(agent)}` };
}
