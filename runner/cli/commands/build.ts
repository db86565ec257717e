import type { Command } from "commander";
import { assertDockerReachable, dockerClient } from "../../docker/client.js";
import { ensureImages, ensurePackagesImage } from "../../images/images.js";
import { loadPolicy } from "../../policy/index.js";
import { style } from "../style.js";

export function registerBuild(program: Command): void {
  program
    .command("build")
    .description("build the base, gate and agent images now (and the package layers of the given policies)")
    .option("-p, --policy <files...>", "also build the cached package layer of these policies")
    .option("-v, --verbose", "show every line of the image builds")
    .addHelpText("after", "\n`airlock run` builds what is missing by itself; use this to prepare a CI machine ahead of time.")
    .action(async (opts: { policy?: string[]; verbose?: boolean }) => {
      const docker = dockerClient();
      await assertDockerReachable(docker);
      const progress = (line: string) => {
        if (opts.verbose || /^(building |installing |pulling |no registry)/.test(line)) process.stderr.write(style.dim(`${line}\n`, process.stderr));
      };
      const images = await ensureImages(docker, progress);
      process.stdout.write(`base  ${images.base} (${images.baseSource})\ngate  ${images.gate}\nagent ${images.agent}\n`);
      for (const file of opts.policy ?? []) {
        const policy = await loadPolicy(file);
        const { tag } = await ensurePackagesImage(docker, { tag: images.agent, id: images.ids.agent }, policy.packages, progress);
        process.stdout.write(`${file}: ${tag}\n`);
      }
    });
}
