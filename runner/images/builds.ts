/**
 * The images one engine was asked for, by key (a language image, a policy's package layer): each is
 * looked up, and built when missing, once per owner. The owner is the Docker backend of a runner, so
 * a second engine (or runner) asks its own engine, never the first one's answer.
 */
import { RememberedByKey } from "../util/remembered.js";
import type { BuiltImage } from "./images.js";

export class ImageBuilds {
  private readonly made = new RememberedByKey<string, BuiltImage>();

  /** The image for `key`, made once (a failed build is tried again next time; the caller has the failure). */
  once(key: string, make: () => Promise<BuiltImage>): Promise<BuiltImage> {
    return this.made.get(key, make);
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
