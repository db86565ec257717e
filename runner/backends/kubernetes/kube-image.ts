/**
 * The image a Pod runs: airlock's language image (built by the runner's local engine, then loaded
 * into the nodes), or the caller's image by its tag, and whether airlock built it (decided from the
 * IDs airlock recorded when it built them, never from anything the image carries).
 */
import { RunOptionsError } from "../../errors.js";
import { trustedImages } from "../../images/trust.js";
import type { ImageSet } from "../../images/images.js";
import type { PreparedRun } from "../../run/prepare.js";
import type { LocalImages } from "./index.js";

export interface PodImage {
  tag: string;
  airlocks: boolean;
  /** The local engine has it (then the image loader, if any, brings it to the nodes). */
  local: boolean;
  /** The language's checks of the agent in its image (a Python compile check). */
  checked: Promise<void>;
}

export async function choosePodImage(r: {
  local: LocalImages;
  images: ImageSet;
  prepared: PreparedRun;
  /** The caller's image, if any (a command runs in it). */
  image: string | undefined;
  progress: (line: string) => void;
}): Promise<PodImage> {
  if (r.image) {
    const given = r.image;
    const info = await r.local.docker
      .getImage(given)
      .inspect()
      // An image the local engine does not have is pulled by the cluster, as any other.
      .catch(() => undefined);
    // A Pod names its image by reference: an image given by its ID runs under one of its tags.
    let tag = given;
    if (info && /^(sha256:)?[0-9a-f]{12,64}$/.test(given)) {
      tag = info.RepoTags?.find((t) => t !== "<none>:<none>") ?? "";
      if (!tag)
        throw new RunOptionsError(
          `image ${given} has no tag, and a Pod names its image by one`,
          `tag it (docker tag ${given.slice(0, 19)} my/agent:1) and pass the tag`,
        );
    }
    return {
      tag,
      airlocks: info ? trustedImages().has(info.Id) : false,
      local: Boolean(info),
      checked: Promise.resolve(),
    };
  }
  const ctx = { docker: r.local.docker, images: r.images, progress: r.progress, builds: r.local.builds };
  const built = await r.prepared.language.image(ctx, r.prepared.policy);
  const checked = r.prepared.staged?.check?.(ctx, built) ?? Promise.resolve();
  // Awaited before the Pod is created; until then a rejection must not count as unhandled.
  checked.catch(() => {});
  return { tag: built.tag, airlocks: true, local: true, checked };
}
