/**
 * A language's packages as a cached layer on top of its image: built once per set of packages
 * (named by their hash, like every airlock image), shared by every run in the process that asks for
 * the same set, and recorded as airlock's own. Each language says how to install (its Dockerfile and
 * files); the install runs in a build stage, and only the installed folder leaves it.
 */
import type Docker from "dockerode";
import type { ContextFile } from "./context.js";
import { built, type ImageBuilds } from "./builds.js";
import { ensureBuilt, planImage, type BuiltImage, type Progress } from "./images.js";

export interface PackagesLayer {
  /** Image repository, e.g. airlock/agent-packages. */
  repo: string;
  kind: string;
  /** What makes two layers the same (the sorted package specs). */
  key: string;
  /** The build context: a Dockerfile named `dockerfile` that starts FROM the image's ID. */
  files: ContextFile[];
  dockerfile: string;
  buildArgs: Record<string, string>;
  /** What the progress line says is installed. */
  describe: string;
  /** Turns a failed build into the language's own error (e.g. pip's message, trimmed); rethrows otherwise. */
  onFailure?: (err: unknown) => never;
}

export function ensurePackagesLayer(
  docker: Docker,
  image: BuiltImage,
  layer: PackagesLayer,
  progress: Progress = () => {},
  builds?: ImageBuilds,
): Promise<BuiltImage> {
  return built(builds, `${layer.repo}|${image.id}|${layer.key}`, () => {
    // The Dockerfile names the image ID, so the hash covers it.
    const planned = planImage(layer, []);
    return ensureBuilt(docker, planned, (m) =>
      progress(m.startsWith("building") ? `installing ${layer.describe} into a cached image layer` : m),
    ).catch((err: unknown) => (layer.onFailure ? layer.onFailure(err) : Promise.reject(err)));
  });
}
