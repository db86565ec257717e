/**
 * The image a Docker run's container is created from, and whether airlock built it: the language's
 * image with the policy's packages (built once, cached), or the caller's image, looked up by ID in
 * the images airlock recorded (never by anything the image carries).
 */
import { RunOptionsError } from "../../errors.js";
import { isNotFound } from "./engine/client.js";
import { withTimeout } from "../../util/with-timeout.js";
import { trustedImages } from "../../images/trust.js";
import type { LanguageImageContext } from "../../languages/language.js";
import type { PreparedRun } from "../../run/prepare.js";

export interface ChosenImage {
  /** What the container is created from: the image ID (a tag could be moved meanwhile). */
  id: string;
  /** The language's checks that need the image (a Python agent's compile check): run meanwhile, awaited before the agent may start. */
  checked: Promise<void>;
  /** What the result shows. */
  label: string;
  /** airlock built it (its ID is recorded), so its own init gates it. */
  airlocks: boolean;
}

export async function chooseImage(
  ctx: LanguageImageContext,
  prepared: PreparedRun,
  image: string | undefined,
): Promise<ChosenImage> {
  if (!image) {
    const built = await prepared.language.image(ctx, prepared.policy);
    const checked = prepared.staged?.check?.(ctx, built) ?? Promise.resolve();
    // Awaited before the agent starts; until then a failure must not count as unhandled.
    checked.catch(() => {});
    return { id: built.id, label: built.tag, airlocks: true, checked };
  }
  const info = await withTimeout(
    ctx.docker.getImage(image).inspect(),
    15_000,
    "the engine did not answer an image inspect within 15 s",
  ).catch((err: unknown) => {
    if (isNotFound(err))
      throw new RunOptionsError(
        `image ${image} is not on this engine`,
        `build or pull it first (docker pull ${image})`,
      );
    throw err;
  });
  return { id: info.Id, label: image, airlocks: trustedImages().has(info.Id), checked: Promise.resolve() };
}
