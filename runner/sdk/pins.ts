/**
 * The SDK's `pip_packages` are usually unpinned (`["redis"]`); an image layer built from an unpinned
 * name is a different layer on every machine. So each unpinned name is pinned before anything is
 * built:
 * - a client airlock's Python image already has (redis, pika, kafka-python, paho-mqtt, nats-py)
 *   is the image's own version: nothing to build, and the same everywhere;
 * - any other name takes the version in `airlock.lock` beside the script, and when that file does
 *   not name it yet, the newest version the front end's own pip resolves (from the index the user's
 *   pip uses), written there for the user to check in. A pinned or ranged requirement is kept as
 *   written.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { AirlockError } from "../errors.js";
import { packagePath } from "../paths.js";
import { normalizePipName, parsePipRequirement } from "../policy/pip-spec.js";

export const LOCK_FILE = "airlock.lock";
const RESOLVE_TIMEOUT_MS = 120_000;

/** A package could not be pinned: no lock line, and the front end's pip could not resolve it. */
export class PinError extends AirlockError {
  constructor(name: string, detail: string, lockFile: string) {
    super("PIP_UNPINNED", `pip_packages: "${name}" has no version and ${detail}`, {
      fix: `pin it in the script (pip_packages=["${name}==<version>"]) or add a line ${name}==<version> to ${lockFile}`,
    });
  }
}

/** The versions airlock's Python image has (agent-runtime/python/requirements.txt), by normalized name. */
export function imagePins(): Map<string, string> {
  return pinLines(readFileSync(packagePath("agent-runtime", "python", "requirements.txt"), "utf8"));
}

/** The `name==version` lines of a requirements or lock file, by normalized name (comments and the rest skipped). */
function pinLines(text: string): Map<string, string> {
  const pins = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9._-]+)==([^\s;#]+)/.exec(line.trim());
    if (m) pins.set(normalizePipName(m[1]!), `${m[1]}==${m[2]}`);
  }
  return pins;
}

export interface Pinned {
  /** What goes into the policy's packages.pip (the image's own clients are left out: already there). */
  pip: string[];
  /** name → how it was pinned, for the run's warnings ("redis: the image's 5.2.1"). */
  notes: string[];
}

/** Unpinned means a bare name (with extras): no version clause, no marker. */
function bare(spec: string): boolean {
  return /^[A-Za-z0-9._-]+(\[[^\]]*\])?$/.test(spec.trim());
}

async function readLock(file: string): Promise<Map<string, string>> {
  return pinLines(await readFile(file, "utf8").catch(() => "")); // no lock file yet: nothing pinned by it
}

/** The newest version the user's pip would install, without installing it (pip ≥ 22.2). */
async function resolveWithPip(python: string, name: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    python,
    ["-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed", "--report", "-", name],
    { timeout: RESOLVE_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 },
  );
  const report = JSON.parse(stdout) as { install?: { metadata?: { version?: string } }[] };
  const version = report.install?.[0]?.metadata?.version;
  if (!version) throw new Error("pip's report names no version");
  return version;
}

export async function pinPackages(packages: string[], script: string, python: string | undefined): Promise<Pinned> {
  const image = imagePins();
  const lockFile = join(dirname(script), LOCK_FILE);
  const shownLock = relative(process.cwd(), lockFile) || lockFile;
  const lock = await readLock(lockFile);
  const pip: string[] = [];
  const notes: string[] = [];
  const added: string[] = [];
  for (const spec of packages) {
    if (!bare(spec)) {
      pip.push(parsePipRequirement(spec).spec); // checked (and refused with its fix) as the policy's own list
      continue;
    }
    const name = spec.trim().replace(/\[.*$/, "");
    const key = normalizePipName(name);
    const inImage = image.get(key);
    if (inImage) {
      notes.push(`${name}: the image's ${inImage}`);
      continue;
    }
    const locked = lock.get(key);
    if (locked) {
      pip.push(locked);
      continue;
    }
    if (!python) throw new PinError(name, `is not in ${shownLock}`, shownLock);
    let version: string;
    try {
      version = await resolveWithPip(python, name);
    } catch (err) {
      throw new PinError(name, `pip could not resolve it: ${(err as Error).message.split("\n")[0]}`, shownLock);
    }
    const pinned = `${name}==${version}`;
    pip.push(pinned);
    added.push(pinned);
    notes.push(`${name}: pinned to ${version} in ${shownLock} (check it in)`);
  }
  if (added.length) {
    const before = await readFile(lockFile, "utf8").catch(
      () => "# Versions airlock pinned for this folder's unpinned pip_packages (written on first use; check it in).\n",
    );
    await writeFile(lockFile, `${before.replace(/\n?$/, "\n")}${added.join("\n")}\n`);
  }
  return { pip, notes };
}
