/**
 * The Python agent image (images/python/Dockerfile) and the layers with a policy's pip packages.
 * Its base: AIRLOCK_PYTHON_BASE_IMAGE if set; else the official python image (present, or pulled
 * where a registry answers); else the local Debian base airlock already builds for Node, with
 * Debian's python3 added. Named by the hash of what went into it and recorded as airlock's own, like
 * every airlock image.
 */
import type Docker from "dockerode";
import { built, type ImageBuilds } from "../../images/builds.js";
import { ImageBuildError } from "../../errors.js";
import { runOneOff } from "../../backends/docker/engine/one-off.js";
import { directoryEntries, fileEntry, type ContextFile } from "../../images/context.js";
import {
  ensureBuilt,
  imageId,
  planImage,
  tryPull,
  customBase,
  type BuiltImage,
  type ImageSet,
  type Progress,
} from "../../images/images.js";
import { ensurePackagesLayer } from "../../images/packages-layer.js";
import { trustedImages } from "../../images/trust.js";
import { packagePath } from "../../paths.js";
import type { PipRequirement } from "../../policy/pip-spec.js";
import { pipSettings, type PipSettings } from "./pip-settings.js";
import { pythonBaseImageSetting } from "../../settings.js";

export const OFFICIAL_PYTHON_BASE = "python:3.11-slim-bookworm";

async function resolvePythonBase(
  docker: Docker,
  images: ImageSet,
  progress: Progress,
): Promise<{ ref: string; id: string }> {
  const custom = pythonBaseImageSetting();
  if (custom) return customBase(docker, custom, "AIRLOCK_PYTHON_BASE_IMAGE", progress);
  const official = await imageId(docker, OFFICIAL_PYTHON_BASE);
  if (official) return { ref: OFFICIAL_PYTHON_BASE, id: official };
  // A registry answered for the Node base: it will for Python's too.
  if (images.baseSource === "official" && (await tryPull(docker, OFFICIAL_PYTHON_BASE, progress)))
    return { ref: OFFICIAL_PYTHON_BASE, id: (await imageId(docker, OFFICIAL_PYTHON_BASE))! };
  const base = await imageId(docker, images.base);
  if (!base) throw new ImageBuildError(images.base, "the base image went missing", "", "run `airlock build` again");
  return { ref: images.base, id: base };
}

function settingsFiles(settings: PipSettings): ContextFile[] {
  return [
    { name: "airlock-ca.pem", content: settings.caBundle },
    { name: "airlock-pip.conf", content: settings.conf },
  ];
}

/** The Python agent image, built if missing (looked up once per `builds`, the engine's). */
export function ensurePythonImage(
  docker: Docker,
  images: ImageSet,
  progress: Progress = () => {},
  builds?: ImageBuilds,
): Promise<BuiltImage> {
  return built(builds, `python|${images.base}`, () => buildPythonImage(docker, images, progress));
}

async function planPythonImage(base: { ref: string; id: string }, settings: PipSettings) {
  const files = [
    await fileEntry("Dockerfile.python", packagePath("images", "python", "Dockerfile")),
    await fileEntry(
      "agent-runtime/python/requirements.txt",
      packagePath("agent-runtime", "python", "requirements.txt"),
    ),
    ...(
      await directoryEntries("agent-runtime/python/airlock", packagePath("agent-runtime", "python", "airlock"))
    ).filter((f) => !f.name.includes("__pycache__") && !f.name.endsWith(".pyc")),
    await fileEntry("images/agent/airlock-init.sh", packagePath("images", "agent", "airlock-init.sh")),
    ...settingsFiles(settings),
  ];
  return planImage(
    {
      repo: "airlock/python-agent",
      kind: "python-agent-image",
      files,
      dockerfile: "Dockerfile.python",
      buildArgs: { BASE_IMAGE: base.ref, ...settings.proxyArgs },
    },
    [base.id],
  );
}

/** Whether the Python image is built, without building or pulling anything (for `airlock doctor`). */
export async function pythonImageStatus(
  docker: Docker,
  nodeBase: string,
): Promise<{ tag: string; present: boolean } | undefined> {
  const custom = pythonBaseImageSetting();
  for (const ref of [...(custom ? [custom] : []), OFFICIAL_PYTHON_BASE, nodeBase]) {
    const id = await imageId(docker, ref);
    if (!id) continue;
    const planned = await planPythonImage({ ref, id }, pipSettings());
    return { tag: planned.tag, present: (await imageId(docker, planned.tag)) !== undefined };
  }
  return undefined;
}

async function buildPythonImage(docker: Docker, images: ImageSet, progress: Progress): Promise<BuiltImage> {
  const base = await resolvePythonBase(docker, images, progress);
  const settings = pipSettings();
  const planned = await planPythonImage(base, settings);
  if (!(await imageId(docker, planned.tag)))
    progress(`building the Python agent image on ${base.ref} (once: about a minute)`);
  return ensureBuilt(docker, planned, progress).catch((err: unknown) => {
    throw pipFailure(
      err,
      `the Python runtime's clients (agent-runtime/python/requirements.txt) from ${settings.index}`,
    );
  });
}

const VERSION_FACT = "python";

/** The image's Python as "3.11": asked of the image once, then remembered with its record. */
export async function pythonVersionOf(docker: Docker, image: BuiltImage): Promise<string> {
  const trust = trustedImages();
  const known = trust.fact(image.id, VERSION_FACT);
  if (known) return known;
  const run = await runOneOff(docker, {
    image: image.id,
    cmd: ["python3", "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
  });
  const version = run.stdout.trim();
  if (run.code !== 0 || !/^\d+\.\d+$/.test(version))
    throw new ImageBuildError(
      image.tag,
      `its python3 did not say its version (exit ${run.code}): ${run.stderr.trim().slice(0, 200)}`,
      run.stderr,
    );
  trust.setFact(image.id, VERSION_FACT, version);
  return version;
}

/** The Python image plus the policy's pip packages (/opt/agent/python), as a cached layer. */
export function ensurePipPackagesImage(
  docker: Docker,
  pythonImage: BuiltImage,
  packages: PipRequirement[],
  policySource: string,
  progress: Progress = () => {},
  builds?: ImageBuilds,
): Promise<BuiltImage> {
  if (packages.length === 0) return Promise.resolve(pythonImage);
  const sorted = [...packages].sort((a, b) => a.key.localeCompare(b.key) || a.spec.localeCompare(b.spec));
  const settings = pipSettings();
  const requirements = `${sorted.map((p) => p.spec).join("\n")}\n`;
  const dockerfile = [
    // FROM the recorded ID, not the tag: the layer is built on what airlock built.
    `FROM ${pythonImage.id} AS deps`,
    "USER root",
    "COPY airlock-ca.pem airlock-pip.conf requirements.txt /tmp/",
    "ENV PIP_CONFIG_FILE=/tmp/airlock-pip.conf PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore PIP_BREAK_SYSTEM_PACKAGES=1",
    "RUN if [ -s /tmp/airlock-ca.pem ]; then export PIP_CERT=/tmp/airlock-ca.pem; fi; \\",
    "    python3 -m pip install --quiet --no-warn-script-location --target /opt/agent/python -r /tmp/requirements.txt \\",
    " && python3 -m compileall -q /opt/agent/python",
    `FROM ${pythonImage.id}`,
    // Only the installed packages leave the install stage: nothing an install script did elsewhere.
    "COPY --from=deps /opt/agent/python /opt/agent/python",
    "",
  ].join("\n");
  return ensurePackagesLayer(
    docker,
    pythonImage,
    {
      repo: "airlock/python-packages",
      kind: "python-packages-image",
      key: requirements,
      files: [
        { name: "Dockerfile.packages", content: Buffer.from(dockerfile) },
        { name: "requirements.txt", content: Buffer.from(requirements) },
        ...settingsFiles(settings),
      ],
      dockerfile: "Dockerfile.packages",
      buildArgs: { ...settings.proxyArgs },
      describe: sorted.map((p) => p.spec.split(" ")[0]).join(" "),
      onFailure: (err) => {
        throw pipFailure(err, `the packages in packages.pip of ${policySource} from ${settings.index}`);
      },
    },
    progress,
    builds,
  );
}

/** A failed pip install, as pip said it (its ERROR lines, the version list shortened), with the fix. */
export function pipFailure(err: unknown, what: string): unknown {
  if (!(err instanceof ImageBuildError)) return err;
  const errors = err.log
    .split("\n")
    .filter((l) => /^\s*(ERROR|error):|No matching distribution|Could not find a version/.test(l))
    .map((l) =>
      l.trim().replace(/\(from versions: ([^)]*)\)/, (_m, list: string) => {
        const versions = list.split(",").map((v) => v.trim());
        return versions.length > 8
          ? `(from versions: ..., ${versions.slice(-8).join(", ")})`
          : `(from versions: ${list})`;
      }),
    );
  if (!errors.length) return err;
  const text = errors.join("\n");
  const fix = /No matching distribution|Could not find a version/.test(text)
    ? "check the names and versions (pip index versions NAME lists what the index has)"
    : /certificate|SSL/i.test(text)
      ? "the index's TLS certificate is not trusted inside the build: set PIP_CERT (or SSL_CERT_FILE) to your CA bundle before running airlock"
      : /Could not fetch|connection|Network|resolve/i.test(text)
        ? "the build could not reach the index: check PIP_INDEX_URL / pip.conf and your proxy variables (HTTPS_PROXY)"
        : "fix the requirement pip names above";
  return new ImageBuildError(err.image, `pip could not install ${what}:\n${text}`, err.log, fix);
}
