import { join } from "node:path";
import { dockerClient, ensureImages } from "../../../runner/index.js";
import { buildImage } from "../../../runner/images/build.js";
import { contextHash, fileEntry } from "../../../runner/images/context.js";

const HERE = import.meta.dirname;

/** The attacker image, built once per content hash. */
export async function attackerImage(): Promise<string> {
  const docker = dockerClient();
  const { agent } = await ensureImages(docker);
  const files = [await fileEntry("Dockerfile", join(HERE, "attacker.Dockerfile"))];
  const tag = `airlock-test/attacker:${contextHash(files, [agent])}`;
  const exists = await docker.getImage(tag).inspect().then(() => true, () => false);
  if (!exists) await buildImage(docker, { tag, files, dockerfile: "Dockerfile", buildArgs: { AGENT_IMAGE: agent }, labels: { "dev.airlock.test": "attacker" } });
  return tag;
}

