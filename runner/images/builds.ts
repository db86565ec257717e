/**
 * The images one engine was asked for, by key (a language image, a policy's package layer): each is
 * looked up, and built when missing, once per owner. The owner is the Docker backend of a runner, so
 * a second engine (or runner) asks its own engine, never the first one's answer.
 */
import type { BuiltImage } from "./images.js";

export class ImageBuilds {
  private readonly pending = new Map<string, Promise<BuiltImage>>();

  once(key: string, make: () => Promise<BuiltImage>): Promise<BuiltImage> {
    let build = this.pending.get(key);
    if (!build) {
      build = make();
      this.pending.set(key, build);
      // A failed build is asked again next time (the caller has the failure).
      build.catch(() => this.pending.delete(key));
    }
    return build;
  }
}

/** `make()` through `builds` when there is one; at once otherwise. */
export function built(
  builds: ImageBuilds | undefined,
  key: string,
  make: () => Promise<BuiltImage>,
): Promise<BuiltImage> {
  return builds ? builds.once(key, make) : make();
}
