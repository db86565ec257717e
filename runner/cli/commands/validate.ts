import type { Command } from "commander";
import { PolicyError, formatIssue } from "../../errors.js";
import { style } from "../style.js";

export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("check policy files and run files without running anything")
    .argument("<files...>", "policy or run files (YAML); a run file's policies are checked too")
    .option("--json", "print the problems as JSON")
    .addHelpText(
      "after",
      "\nExit code: 0 when every file is valid, 1 otherwise.\n\nExample:\n  airlock validate policies/*.yaml",
    )
    .action(async (files: string[], opts: { json?: boolean }) => {
      const [{ isRunFile, loadRunFile }, { loadPolicy }] = await Promise.all([
        import("../../group/run-file.js"),
        import("../../policy/index.js"),
      ]);
      const report: { file: string; ok: boolean; name?: string; issues: PolicyError["issues"] }[] = [];
      const check = async (file: string) => {
        try {
          if (await isRunFile(file)) {
            const run = await loadRunFile(file);
            report.push({ file, ok: true, name: `run ${run.name}, ${run.agents.length} agents`, issues: [] });
            for (const policy of new Set(run.agents.map((a) => a.policy)))
              if (!report.some((r) => r.file === policy)) await check(policy);
          } else {
            const policy = await loadPolicy(file);
            report.push({ file, ok: true, name: `policy ${policy.name}`, issues: [] });
          }
        } catch (err) {
          if (!(err instanceof PolicyError)) throw err;
          report.push({ file, ok: false, issues: err.issues });
        }
      };
      for (const file of files) await check(file);
      if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        for (const r of report) {
          if (r.ok) process.stdout.write(`${style.green("✔")} ${r.file} ${style.dim(`(${r.name})`)}\n`);
          else {
            process.stdout.write(`${style.red("✖")} ${r.file}\n`);
            for (const issue of r.issues) process.stdout.write(`  ${formatIssue(issue).replace(/\n/g, "\n  ")}\n`);
          }
        }
      }
      process.exitCode = report.every((r) => r.ok) ? 0 : 1;
    });
}
