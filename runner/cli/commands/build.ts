import type { Command } from "commander";
import type { LanguageName } from "../../languages/names.js";
import type { Policy } from "../../policy/index.js";
import { style } from "../style.js";

/** The languages a policy's agents may be in: the one it names, else those it lists packages for (Node when none). */
function languagesOf(
  policy: Policy,
  LANGUAGES: typeof import("../../languages/registry.js").LANGUAGES,
): LanguageName[] {
  if (policy.runtime) return [policy.runtime];
  const listed = Object.values(LANGUAGES)
    .filter((l) => l.hasPackages(policy))
    .map((l) => l.name);
  return listed.length ? listed : ["node"];
}

export function registerBuild(program: Command): void {
  program
    .command("build")
    .description("build the base, gate and agent images now (and the package layers of the given policies)")
    .option(
      "-p, --policy <files...>",
      "also build the cached package layers of these policies (for each language they are for); a run file given here stands for its agents' policies",
    )
    .option("--python", "also build the Python agent image")
    .option("-v, --verbose", "show every line of the image builds")
    .addHelpText(
      "after",
      "\n`airlock run` builds what is missing by itself; use this to prepare a CI machine ahead of time.",
    )
    .action(async (opts: { policy?: string[]; python?: boolean; verbose?: boolean }) => {
      // Loaded here, not at the top: `airlock --help` should not pay for the engine client.
      const [{ assertDockerReachable, dockerClient }, { ensureImages }, { LANGUAGES }, { definePolicy, loadPolicy }] =
        await Promise.all([
          import("../../backends/docker/engine/client.js"),
          import("../../images/images.js"),
          import("../../languages/registry.js"),
          import("../../policy/index.js"),
        ]);
      const docker = dockerClient();
      await assertDockerReachable(docker);
      const progress = (line: string) => {
        if (opts.verbose || /^(building |installing |pulling |no registry)/.test(line))
          process.stderr.write(style.dim(`${line}\n`, process.stderr));
      };
      const images = await ensureImages(docker, progress);
      process.stdout.write(
        `base   ${images.base} (${images.baseSource})\ngate   ${images.gate}\nagent  ${images.agent}\n`,
      );
      const ctx = { docker, images, progress };
      if (opts.python)
        process.stdout.write(`python ${(await LANGUAGES.python.image(ctx, definePolicy({ name: "build" }))).tag}\n`);
      for (const file of await policyFiles(opts.policy ?? [])) {
        const policy = await loadPolicy(file);
        for (const name of languagesOf(policy, LANGUAGES)) {
          const { tag } = await LANGUAGES[name].image(ctx, policy);
          process.stdout.write(`${file} (${name}): ${tag}\n`);
        }
      }
    });
}

/** The policy files named: a run file among them (a glob such as *.yaml catches those too) stands for its agents' policies. */
async function policyFiles(files: string[]): Promise<string[]> {
  const { isRunFile, loadRunFile } = await import("../../group/run-file.js");
  const out: string[] = [];
  for (const file of files) {
    if (await isRunFile(file)) out.push(...(await loadRunFile(file)).agents.map((a) => a.policy));
    else out.push(file);
  }
  return [...new Set(out)];
}
