import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import type { Command } from "commander";
import { shipped } from "../shipped.js";
import { printable, style } from "../style.js";

/** `airlock learn`: run an agent until its brokers have nothing left to refuse, and write the bus rights it needed. */
export function registerLearn(program: Command): void {
  program
    .command("learn")
    .description("learn the tightest bus rights an agent needs: run it, add what its brokers refuse, repeat")
    .argument("<agent>", "the agent (a .ts, .js or .py file, with --policy), or a run file (its agents together)")
    .option("-p, --policy <file>", "the agent's policy YAML file: the network as it stands, the bus kinds it uses")
    .requiredOption("-o, --output <dir>", "host folder for each run's /output (run-1, run-2, ...)")
    .option("--max-runs <n>", "stop after this many runs", "8")
    .option(
      "--write <path>",
      "where the learnt policy goes: a file for one agent, a folder for a run file (default: <policy>.learned.yaml beside each policy)",
    )
    .addHelpText(
      "after",
      `
Each run gives the agent its policy with the bus lists holding only what was learnt so far (at first
nothing): every name a broker refuses and a policy line could allow is added, exactly (the run's and
the agent's names written back as {run} and {agent}), until a run has nothing new to learn. The
network is the policy's own: learning never widens it. What no line can allow is listed, not added.

Exit code: 0 when the last run succeeded with nothing left to learn; 1 otherwise; 125 when airlock could not run it.

Example:
  airlock learn ${shipped("examples", "bus-rights", "snooper.ts")} --policy ${shipped("policies", "bus-rights-snooper.yaml")} --output out/learn`,
    )
    .action(async (agent: string, opts: { policy?: string; output: string; maxRuns: string; write?: string }) => {
      const [{ learn, learnedFileFor }, { learnedYaml, lineDiff }, { describeRefusal }] = await Promise.all([
        import("../../learn/learn.js"),
        import("../../learn/learned-yaml.js"),
        import("../../run/refusals.js"),
      ]);
      const out = process.stdout;
      const report = (n: number, status: string, added: { path: string[]; value: string | true }[]) => {
        const what = added.length
          ? `learnt ${added.length}: ${added.map((a) => `${a.path.slice(1).join(".")} += ${a.value}`).join(", ")}`
          : "nothing new to learn";
        out.write(`${style.dim(`run ${n}:`, out)} ${status} · ${printable(what)}\n`);
      };
      const maxRuns = Number(opts.maxRuns);
      if (!Number.isInteger(maxRuns) || maxRuns < 1)
        throw new (await import("../exit-codes.js")).UsageError(`--max-runs ${opts.maxRuns} is not a whole number ≥ 1`);
      const { isRunFile } = await import("../../group/run-file.js");
      const results = new Map<string, Awaited<ReturnType<typeof learn>>>();
      const ranFile = await isRunFile(agent);
      if (ranFile) {
        if (opts.write) await mkdir(opts.write, { recursive: true });
        const { learnRun } = await import("../../learn/learn.js");
        for (const [file, r] of await learnRun(agent, {
          outputDir: opts.output,
          maxRuns,
          onRun: (n, group, added) => report(n, group.status, added),
        }))
          results.set(file, r);
      } else {
        if (!opts.policy)
          throw new (await import("../exit-codes.js")).UsageError(
            "learning one agent needs its policy: add --policy <file> (a run file names its agents' policies)",
          );
        results.set(
          opts.policy,
          await learn({
            agent,
            policyFile: opts.policy,
            outputDir: opts.output,
            maxRuns,
            onRun: (n, r, added) =>
              report(n, `${r.status}${r.exitCode === null ? "" : ` (exit ${r.exitCode})`}`, added),
          }),
        );
      }
      let passed = true;
      for (const [policyFile, result] of results) {
        // --write: the file for one agent; for a run file, the folder its policies' learnt files go to.
        const file = !opts.write
          ? learnedFileFor(policyFile)
          : ranFile
            ? join(opts.write, basename(learnedFileFor(policyFile)))
            : opts.write;
        const given = await readFile(policyFile, "utf8");
        const text = learnedYaml(given, result, {
          agent: relative(process.cwd(), agent),
          policyFile: relative(process.cwd(), policyFile),
        });
        await writeFile(file, text);
        out.write(
          `\n${style.bold(relative(process.cwd(), file), out)} (diff against ${relative(process.cwd(), policyFile)}):\n`,
        );
        for (const line of lineDiff(given, text))
          out.write(
            `${line.startsWith("+") ? style.green(line, out) : line.startsWith("-") ? style.red(line, out) : style.dim(line, out)}\n`,
          );
        if (result.notLearnt.length) {
          out.write(
            `${style.yellow("  refused and not learnt (no bus line allows it, or it is the network's):", out)}\n`,
          );
          for (const r of result.notLearnt)
            out.write(`    ${printable(describeRefusal(r))}  ${r.never ? "✖" : "→"} ${printable(r.fix)}\n`);
        }
        passed &&= result.passed;
      }
      const last = [...results.values()].flatMap((r) => r.runs.slice(-1));
      out.write(
        passed
          ? `\n${style.green("✔", out)} the last run passed with nothing left to learn\n`
          : `\n${style.red("✖", out)} the last run did not pass: ${last
              .filter((r) => r.status !== "succeeded" || r.refusals.some((x) => x.allow))
              .map((r) => `${r.name} ${r.status}${r.error ? `: ${printable(r.error)}` : ""}`)
              .join("; ")}\n`,
      );
      process.exitCode = passed ? 0 : 1;
    });
}
