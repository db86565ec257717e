import { join } from "node:path";
import { dockerClient, ensureImages } from "../../../runner/internal.js";
import { buildImage } from "../../../runner/images/build.js";
import { contextHash, fileEntry } from "../../../runner/images/context.js";
import { ensureAirlockImage } from "../../../runner/images/images.js";
import { ensurePythonImage } from "../../../runner/languages/python/image.js";

const HERE = import.meta.dirname;

/**
 * The attacker image: an agent image (Node's, or the Python one) plus python, ping, ip and iptables.
 * With airlockBuilt, airlock builds it as one of its own images (as it builds packages layers), so
 * airlock's init gates it; without, the same Dockerfile is built with a plain `docker build`, which
 * makes it an image someone derived from ours: airlock must treat it as foreign and gate it with a
 * gate container.
 */
export async function attackerImage(options: { airlockBuilt: boolean; language?: "node" | "python" }): Promise<string> {
  const docker = dockerClient();
  const images = await ensureImages(docker);
  const from = options.language === "python" ? (await ensurePythonImage(docker, images)).id : images.ids.agent;
  const suffix = options.language === "python" ? "-python" : "";
  const files = [await fileEntry("Dockerfile", join(HERE, "attacker.Dockerfile"))];
  if (options.airlockBuilt) {
    return (
      await ensureAirlockImage(docker, {
        repo: `airlock-test/attacker${suffix}`,
        kind: "test-attacker",
        files,
        dockerfile: "Dockerfile",
        buildArgs: { AGENT_IMAGE: from },
      })
    ).id;
  }
  const tag = `airlock-test/attacker${suffix}-derived:${contextHash(files, [from])}`;
  if (!(await exists(tag)))
    await buildImage(docker, {
      tag,
      files,
      dockerfile: "Dockerfile",
      buildArgs: { AGENT_IMAGE: from },
      labels: { "dev.airlock.test": "attacker" },
    });
  return tag;
}

/** An image built by a plain `docker build` (never recorded as airlock's) from a Dockerfile text. */
export async function derivedImage(name: string, dockerfile: string): Promise<string> {
  const docker = dockerClient();
  const file = { name: "Dockerfile", content: Buffer.from(dockerfile) };
  const tag = `airlock-test/${name}:${contextHash([file], [])}`;
  if (!(await exists(tag)))
    await buildImage(docker, {
      tag,
      files: [file],
      dockerfile: "Dockerfile",
      buildArgs: {},
      labels: { "dev.airlock.test": name },
    });
  return tag;
}

async function exists(tag: string): Promise<boolean> {
  return dockerClient()
    .getImage(tag)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}
