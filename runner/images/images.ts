/**
 * The images an agent run needs, each built once and named by the hash of what went into it:
 * - base: the official node image, or (offline) a local equivalent built from Debian packages;
 * - gate: base + iptables, runs the egress gate;
 * - agent: base + the agent runtime + a non-root user (Dockerfile.agent).
 * Each agent language adds its own on top (runner/languages/): the Python image, and the layers with
 * a policy's packages. They are built with the same plumbing (planImage, ensureBuilt), so every one
 * of them is recorded as airlock's own.
 */
import { execa } from "execa";
import type Docker from "dockerode";
import { ImageBuildError } from "../errors.js";
import { isNotFound } from "../backends/docker/engine/client.js";
import { withTimeout } from "../util/with-timeout.js";
import { LABEL } from "../labels.js";
import { packagePath } from "../paths.js";
import { buildImage } from "./build.js";
import { contextHash, directoryEntries, fileEntry, type ContextFile } from "./context.js";
import { registrySettings, type RegistrySettings } from "./registry-settings.js";
import { trustedImages } from "./trust.js";
import { baseImageSetting } from "../settings.js";

export const OFFICIAL_BASE = "node:20-bookworm-slim";
export const LOCAL_BASE = "airlock/node-base:20-bookworm-local";

export type Progress = (message: string) => void;

export interface ImageSet {
  base: string;
  baseSource: "official" | "local" | "custom";
  gate: string;
  agent: string;
  /** The IDs airlock built and recorded as its own (containers are created from these, not the tags). */
  ids: { gate: string; agent: string };
}

/** An image airlock built: its tag, and the ID it recorded. */
export interface BuiltImage {
  tag: string;
  id: string;
}

export async function imageId(docker: Docker, ref: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function tryPull(docker: Docker, ref: string, progress: Progress): Promise<boolean> {
  try {
    progress(`pulling ${ref}`);
    const stream = await withTimeout(docker.pull(ref), 30_000, `pull of ${ref} did not start`);
    await withTimeout(
      new Promise<void>((resolve, reject) =>
        docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      ),
      600_000,
      `pull of ${ref} took too long`,
    );
    return (await imageId(docker, ref)) !== undefined;
  } catch (err) {
    progress(`no registry: ${(err as Error).message.split("\n")[0]}`);
    return false;
  }
}

/**
 * A base image the user named in `variable`: present, or pulled now; else an error that names the
 * variable and the fix.
 */
export async function customBase(
  docker: Docker,
  ref: string,
  variable: string,
  progress: Progress,
): Promise<{ ref: string; id: string }> {
  const id =
    (await imageId(docker, ref)) ?? ((await tryPull(docker, ref, progress)) ? await imageId(docker, ref) : undefined);
  if (!id)
    throw new ImageBuildError(
      ref,
      `${variable} is set but the image is neither present nor pullable`,
      "",
      `build or pull it first, or unset ${variable}`,
    );
  return { ref, id };
}

/**
 * The base image: AIRLOCK_BASE_IMAGE if set; else the official node image (present, or pulled);
 * else the local Debian-built equivalent (present, or built now).
 */
export async function resolveBaseImage(
  docker: Docker,
  progress: Progress = () => {},
): Promise<{ ref: string; id: string; source: ImageSet["baseSource"] }> {
  const custom = baseImageSetting();
  if (custom) return { ...(await customBase(docker, custom, "AIRLOCK_BASE_IMAGE", progress)), source: "custom" };
  const official = await imageId(docker, OFFICIAL_BASE);
  if (official) return { ref: OFFICIAL_BASE, id: official, source: "official" };
  const local = await imageId(docker, LOCAL_BASE);
  if (local) return { ref: LOCAL_BASE, id: local, source: "local" };
  if (await tryPull(docker, OFFICIAL_BASE, progress))
    return { ref: OFFICIAL_BASE, id: (await imageId(docker, OFFICIAL_BASE))!, source: "official" };
  progress(`building ${LOCAL_BASE} from Debian packages (about a minute, once)`);
  const script = packagePath("images", "base", "build-local-base.sh");
  const run = await execa("bash", [script, LOCAL_BASE], { reject: false, all: true });
  if (run.exitCode !== 0) {
    throw new ImageBuildError(
      LOCAL_BASE,
      "no registry is reachable and the local base could not be built",
      run.all ?? "",
      "make the official node image available (docker pull node:20-bookworm-slim), or run as root with debootstrap installed",
    );
  }
  return { ref: LOCAL_BASE, id: (await imageId(docker, LOCAL_BASE))!, source: "local" };
}

export function caFile(settings: RegistrySettings): ContextFile {
  return { name: "airlock-ca.pem", content: settings.caBundle };
}

export interface PlannedImage {
  tag: string;
  kind: string;
  files: ContextFile[];
  dockerfile: string;
  buildArgs: Record<string, string>;
}

/** Files of a build context that say how to reach the registries, not what the image is. */
const BUILD_SETTINGS_FILES = new Set(["airlock-ca.pem", "airlock-pip.conf"]);

/** What an image is built from: its repository and kind, its build context, Dockerfile and arguments. */
export interface ImageSpec {
  repo: string;
  kind: string;
  files: ContextFile[];
  dockerfile: string;
  buildArgs: Record<string, string>;
}

/** The image `spec` builds, tagged by its content (and `hashExtra`: what else it is made from, such as its base's ID). */
export function planImage(spec: ImageSpec, hashExtra: string[]): PlannedImage {
  const { repo, kind, files, dockerfile, buildArgs } = spec;
  // The CA bundle, registry settings and proxies change how an image is built, not what it is: keep them out of the hash.
  const hashed = files.filter((f) => !BUILD_SETTINGS_FILES.has(f.name));
  return { tag: `${repo}:${contextHash(hashed, [dockerfile, ...hashExtra])}`, kind, files, dockerfile, buildArgs };
}

/**
 * The image, built by airlock. A tag that exists but whose ID airlock did not record (built before
 * the record existed, or put there by someone else) is built again; the engine's cache makes that
 * quick when the content is the same, and the tag then points at what airlock built.
 */
export async function ensureBuilt(docker: Docker, image: PlannedImage, progress: Progress): Promise<BuiltImage> {
  const trust = trustedImages();
  const existing = await imageId(docker, image.tag);
  if (existing && trust.has(existing)) return { tag: image.tag, id: existing };
  progress(`building ${image.tag}`);
  const id = await buildImage(docker, {
    tag: image.tag,
    files: image.files,
    dockerfile: image.dockerfile,
    buildArgs: image.buildArgs,
    labels: { [LABEL.managed]: "true", [LABEL.kind]: image.kind },
    onProgress: (line) => progress(`  ${line}`),
  });
  trust.add(id, image.tag, image.kind);
  return { tag: image.tag, id };
}

/**
 * Build an image as airlock's own (its ID is recorded, so it gates itself with airlock's init), from
 * files airlock controls. For airlock's images and its test suite; not exported from the package.
 */
export function ensureAirlockImage(
  docker: Docker,
  spec: ImageSpec,
  progress: Progress = () => {},
): Promise<BuiltImage> {
  // The build arguments (e.g. the ID of the image it is built FROM) are part of what it is.
  return ensureBuilt(
    docker,
    planImage(
      spec,
      Object.entries(spec.buildArgs).map(([k, v]) => `${k}=${v}`),
    ),
    progress,
  );
}

/**
 * Base, gate and agent images on this engine, built if missing. Not cached here: the Docker backend
 * that owns an engine's state keeps the answer (one per engine).
 */
export function ensureImages(docker: Docker, progress: Progress = () => {}): Promise<ImageSet> {
  return buildImageSet(docker, progress);
}

async function planImageSet(base: { ref: string; id: string }): Promise<{ gate: PlannedImage; agent: PlannedImage }> {
  const settings = registrySettings();
  const gateFiles = [
    await fileEntry("Dockerfile", packagePath("images", "gate", "Dockerfile")),
    await fileEntry("gate.sh", packagePath("images", "gate", "gate.sh")),
    await fileEntry("pod-gate.sh", packagePath("images", "gate", "pod-gate.sh")),
  ];
  const agentFiles = [
    await fileEntry("Dockerfile.agent", packagePath("Dockerfile.agent")),
    await fileEntry("agent-runtime/package.json", packagePath("agent-runtime", "package.json")),
    await fileEntry("agent-runtime/package-lock.json", packagePath("agent-runtime", "package-lock.json")),
    ...(await directoryEntries("dist/agent-runtime", packagePath("dist", "agent-runtime"))).filter(
      (f) => !f.name.endsWith(".map"),
    ),
    ...(await directoryEntries("images/agent/airlock-shim", packagePath("images", "agent", "airlock-shim"))),
    await fileEntry("images/agent/airlock-init.sh", packagePath("images", "agent", "airlock-init.sh")),
    caFile(settings),
  ];
  return {
    gate: planImage(
      {
        repo: "airlock/gate",
        kind: "gate-image",
        files: gateFiles,
        dockerfile: "Dockerfile",
        buildArgs: { BASE_IMAGE: base.ref, ...settings.proxyArgs },
      },
      [base.id],
    ),
    agent: planImage(
      {
        repo: "airlock/agent",
        kind: "agent-image",
        files: agentFiles,
        dockerfile: "Dockerfile.agent",
        buildArgs: { BASE_IMAGE: base.ref, NPM_CONFIG_REGISTRY: settings.registry, ...settings.proxyArgs },
      },
      [base.id, settings.registry],
    ),
  };
}

async function buildImageSet(docker: Docker, progress: Progress): Promise<ImageSet> {
  const base = await resolveBaseImage(docker, progress);
  const planned = await planImageSet(base);
  const [gate, agent] = await Promise.all([
    ensureBuilt(docker, planned.gate, progress),
    ensureBuilt(docker, planned.agent, progress),
  ]);
  return {
    base: base.ref,
    baseSource: base.source,
    gate: gate.tag,
    agent: agent.tag,
    ids: { gate: gate.id, agent: agent.id },
  };
}

export interface ImageStatus {
  base?: { ref: string; source: ImageSet["baseSource"] };
  gate?: { tag: string; present: boolean };
  agent?: { tag: string; present: boolean };
}

/** Which images are already built, without building or pulling anything. */
export async function imageStatus(docker: Docker): Promise<ImageStatus> {
  const custom = baseImageSetting();
  const candidates: [string, ImageSet["baseSource"]][] = [
    ...(custom ? [[custom, "custom"] as [string, ImageSet["baseSource"]]] : []),
    [OFFICIAL_BASE, "official"],
    [LOCAL_BASE, "local"],
  ];
  for (const [ref, source] of candidates) {
    const id = await imageId(docker, ref);
    if (!id) continue;
    const planned = await planImageSet({ ref, id });
    return {
      base: { ref, source },
      gate: { tag: planned.gate.tag, present: (await imageId(docker, planned.gate.tag)) !== undefined },
      agent: { tag: planned.agent.tag, present: (await imageId(docker, planned.agent.tag)) !== undefined },
    };
  }
  return {};
}
