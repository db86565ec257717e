import { join } from "node:path";
import { dockerClient, ensureImages } from "../../../runner/index.js";
import { LABEL } from "../../../runner/docker/labels.js";
import { buildImage } from "../../../runner/images/build.js";
import { contextHash, fileEntry } from "../../../runner/images/context.js";

const HERE = import.meta.dirname;

/**
 * The attacker image, built once per content hash. It is built FROM the agent image, so it gates
 * itself; with selfGating false, the label that says so is cleared and airlock treats it as any
 * other image (a gate container holds its namespace).
 */
export async function attackerImage(options: { selfGating: boolean }): Promise<string> {
  const docker = dockerClient();
  const { agent } = await ensureImages(docker);
  const files = [await fileEntry("Dockerfile", join(HERE, "attacker.Dockerfile"))];
  const tag = `airlock-test/attacker:${contextHash(files, [agent])}`;
  if (!(await exists(tag))) await buildImage(docker, { tag, files, dockerfile: "Dockerfile", buildArgs: { AGENT_IMAGE: agent }, labels: { "dev.airlock.test": "attacker" } });
  if (options.selfGating) return tag;
  const foreign = `airlock-test/attacker-foreign:${tag.split(":")[1]}`;
  if (!(await exists(foreign))) {
    const dockerfile = { name: "Dockerfile", content: Buffer.from(`FROM ${tag}\nLABEL ${LABEL.selfGating}=""\n`) };
    await buildImage(docker, { tag: foreign, files: [dockerfile], dockerfile: "Dockerfile", buildArgs: {}, labels: { "dev.airlock.test": "attacker" } });
  }
  return foreign;
}

async function exists(tag: string): Promise<boolean> {
  return dockerClient().getImage(tag).inspect().then(() => true, () => false);
}

