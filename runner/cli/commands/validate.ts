import type { Command } from "commander";
import { PolicyError, formatIssue } from "../../errors.js";
import { loadPolicy } from "../../policy/index.js";
import { style } from "../style.js";

export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("check policy files without running anything")
    .argument("<files...>", "policy YAML files")
    .option("--json", "print the problems as JSON")
    .addHelpText("after", "\nExit code: 0 when every file is valid, 1 otherwise.\n\nExample:\n  airlock validate policies/*.yaml")
    .action(async (files: string[], opts: { json?: boolean }) => {
      const report: { file: string; ok: boolean; name?: string; issues: ReturnType<typeof issuesOf> }[] = [];
      for (const file of files) {
        try {
          const policy = await loadPolicy(file);
          report.push({ file, ok: true, name: policy.name, issues: [] });
        } catch (err) {
          if (!(err instanceof PolicyError)) throw err;
          report.push({ file, ok: false, issues: issuesOf(err) });
        }
      }
      if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      else {
        for (const r of report) {
          if (r.ok) process.stdout.write(`${style.green("✔")} ${r.file} ${style.dim(`(policy ${r.name})`)}\n`);
          else {
            process.stdout.write(`${style.red("✖")} ${r.file}\n`);
            for (const issue of r.issues) process.stdout.write(`  ${formatIssue(issue).replace(/\n/g, "\n  ")}\n`);
          }
        }
      }
      process.exitCode = report.every((r) => r.ok) ? 0 : 1;
    });
}

function issuesOf(err: PolicyError) {
  return err.issues;
}
