/** `airlock init`: a working starting point (a run file, its agents and policies) in the user's project. */
import type { Command } from "commander";
import { style } from "../style.js";

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("write a working example (run file, agents, policies) into this project")
    .argument("[template]", "which one (npx airlock init --list)", "redis-pubsub")
    .option("-d, --dir <folder>", "where to write it (default: a folder named after the template)")
    .option("--force", "replace files that already exist")
    .option("--list", "list the templates")
    .addHelpText(
      "after",
      "\nExamples:\n  npx airlock init                      # redis-pubsub/: a producer and a consumer over Redis\n  npx airlock init python-redis-pubsub  # the same pair in Python\n  npx airlock init hello --dir agents   # one agent and its policy\n\nThe brokers the examples use: npx airlock brokers start",
    )
    .action(async (name: string, opts: { dir?: string; force?: boolean; list?: boolean }) => {
      const { initTemplate, listTemplates } = await import("../../init/templates.js");
      if (opts.list) {
        const templates = await listTemplates();
        const width = Math.max(...templates.map((t) => t.name.length));
        for (const t of templates) process.stdout.write(`${t.name.padEnd(width)}  ${t.description}\n`);
        return;
      }
      const done = await initTemplate(name, opts);
      for (const file of done.files) process.stdout.write(`  wrote ${file}\n`);
      process.stdout.write(
        `${style.green("✔", process.stdout)} ${done.template.name}: ${done.template.description}\n\nRun it:\n  ${done.next}\n`,
      );
    });
}
