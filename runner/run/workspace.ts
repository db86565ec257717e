/**
 * The working directory an agent sees at /workspace. Nothing is mounted unless the caller names a
 * folder; a named folder is mounted read-only with every secret-looking entry in it (.env files,
 * private keys, registry and cloud credentials, ...) covered by an empty read-only mount, unless
 * the policy's workspace.include names it. An .env file would otherwise hand the agent what the
 * env allow-list keeps from it.
 */
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { RunOptionsError } from "../errors.js";

/** File names that look like secrets (* matches within a name). */
export const SECRET_FILES = [
  ".env",
  ".env.*",
  "*.env",
  "*.pem",
  "*.key",
  "*.p12",
  "*.pfx",
  "*.jks",
  "*.keystore",
  "*.kdbx",
  "id_rsa*",
  "id_dsa*",
  "id_ecdsa*",
  "id_ed25519*",
  ".npmrc",
  ".yarnrc.yml",
  ".pypirc",
  ".netrc",
  ".pgpass",
  ".git-credentials",
  ".htpasswd",
  "credentials",
  "credentials.json",
  "secrets.*",
  "kubeconfig",
  "terraform.tfstate*",
];
/** Folder names whose whole content is credentials. */
export const SECRET_DIRS = [".ssh", ".aws", ".gnupg", ".docker", ".kube", ".azure", "gcloud"];
/** Secret-looking names that are templates by convention. */
const TEMPLATES = /\.(example|sample|template|dist)$/;
/** Paths inside the tree (relative) that hold credentials although their names do not say so. */
const SECRET_PATHS = [".git/config"];
/** Not walked: large, and never secrets of the user's (a package's own test keys are not). */
const SKIP_DIRS = new Set(["node_modules", ".venv", "venv", "__pycache__"]);
const MAX_ENTRIES = 50_000;
const MAX_HIDDEN = 500;

export interface WorkspaceMounts {
  /** Docker binds, the folder first. */
  binds: string[];
  /** Paths (relative) kept out of /workspace. */
  hidden: string[];
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join("[^/]*")}$`,
  );
}

const secretFile = SECRET_FILES.map(globToRegExp);

export function looksSecret(name: string, isDir: boolean): boolean {
  if (isDir) return SECRET_DIRS.includes(name);
  if (TEMPLATES.test(name)) return false;
  return secretFile.some((r) => r.test(name));
}

/** Whether the policy's workspace.include lets this path (relative) in. */
export function included(path: string, include: string[]): boolean {
  const name = path.split("/").pop()!;
  return include.some((pattern) => {
    const r = globToRegExp(pattern);
    return pattern.includes("/") ? r.test(path) : r.test(name) || r.test(path);
  });
}

/** What to hide in `dir` (relative paths, with whether each is a folder). */
export async function findSecrets(dir: string, include: string[]): Promise<{ path: string; dir: boolean }[]> {
  const found: { path: string; dir: boolean }[] = [];
  let seen = 0;
  const walk = async (at: string): Promise<void> => {
    // A folder that cannot be read adds nothing to the workspace check (the mount is read-only either way).
    const entries = await readdir(at, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (++seen > MAX_ENTRIES) {
        throw new RunOptionsError(
          `working directory ${dir} has more than ${MAX_ENTRIES} entries to check for secrets`,
          "point workingDir at the folder the agent needs, not a whole repository or home folder",
        );
      }
      const full = join(at, e.name);
      const rel = relative(dir, full);
      const isDir = e.isDirectory();
      if ((looksSecret(e.name, isDir) || SECRET_PATHS.includes(rel)) && !included(rel, include)) {
        found.push({ path: rel, dir: isDir });
        continue;
      }
      if (isDir && !SKIP_DIRS.has(e.name)) await walk(full);
    }
  };
  await walk(dir);
  if (found.length > MAX_HIDDEN) {
    throw new RunOptionsError(
      `working directory ${dir} has ${found.length} secret-looking entries`,
      "point workingDir at the folder the agent needs",
    );
  }
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Binds for /workspace: the folder read-only, and over each secret an empty file (/dev/null) or
 * an empty read-only folder.
 */
export async function workspaceMounts(
  dir: string | undefined,
  include: string[],
  emptyDir: string,
): Promise<WorkspaceMounts> {
  if (!dir) return { binds: [], hidden: [] };
  const secrets = await findSecrets(dir, include);
  return {
    binds: [`${dir}:/workspace:ro`, ...secrets.map((s) => `${s.dir ? emptyDir : "/dev/null"}:/workspace/${s.path}:ro`)],
    hidden: secrets.map((s) => s.path),
  };
}
