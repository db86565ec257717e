import { mkdir, writeFile } from "node:fs/promises";
import { dirname, relative } from "node:path";
import type { Command } from "commander";
import { onInterrupt } from "../interrupt.js";
import type { GroupResult } from "../../group/run-agents.js";
import { addBackendFlags, backendFlag, runnerBackendOptions, type BackendFlags } from "../backend-flag.js";
import { eventPrinter, refusedLines } from "./run.js";
import { formatDuration, printable, style } from "../style.js";
import { junitXml, lastLines } from "../../group/junit.js";

export function registerUp(program: Command): void {
  addBackendFlags(program.command("up"))
    .description("run the agents of a run file together (e.g. a producer/consumer pair)")
    .argument("<file>", "run file (YAML)")
    .option("-o, --output <dir>", "output folder; each agent writes to <dir>/<agent> (default: out/<run name>)")
    .option("--junit <file>", "also write the results as JUnit XML, for CI systems")
    .option("--require-bus-rights", "fail an agent whose policy's bus rights cannot be enforced, instead of warning")
    .option(
      "--typecheck",
      "type-check every TypeScript agent with your project's TypeScript before it starts (typecheck: true does it for one)",
    )
    .option("--json", "print the results as JSON on stdout (agent output goes to stderr)")
    .option("-q, --quiet", "do not stream the agents' output")
    .option("--no-pool", "start every agent's sandbox when it starts (no warm pool for agents that wait for others)")
    .addHelpText(
      "after",
      `
Exit code: 0 when every agent succeeded, 1 otherwise, 130 when interrupted.
Ctrl-C stops every agent (SIGTERM, then SIGKILL) and removes every container.

Example (npx airlock init writes redis-pubsub/, a producer and a consumer over Redis):
  airlock up redis-pubsub/run.yaml --junit out/junit.xml`,
    )
    .action(
      async (
        file: string,
        opts: {
          output?: string;
          junit?: string;
          json?: boolean;
          quiet?: boolean;
          requireBusRights?: boolean;
          pool?: boolean;
          typecheck?: boolean;
        } & BackendFlags,
      ) => {
        const [{ loadRunFile }, { runAgents }, { createRunner }] = await Promise.all([
          import("../../group/run-file.js"),
          import("../../group/run-agents.js"),
          import("../../runner.js"),
        ]);
        const spec = await loadRunFile(file);
        // runAgents starts one gate per agent that needs one, up front; none are needed after the run.
        // The warm pool: agents that wait for others find a sandbox started meanwhile (--no-pool: none).
        const waiting = spec.agents.filter((a) => Object.keys(a.waitFor).length).length;
        const runner = createRunner({
          gatePoolSize: 0,
          pool: opts.pool === false || !waiting ? false : { size: waiting },
          ...runnerBackendOptions(opts),
        });
        const interrupt = onInterrupt("every agent");
        const backend = backendFlag(opts);
        const out = opts.json ? process.stderr : process.stdout;
        const width = Math.max(...spec.agents.map((a) => a.name.length));
        const group = await runAgents(spec, {
          ...(opts.output ? { outputDir: opts.output } : {}),
          ...(opts.typecheck ? { typecheck: true } : {}),
          signal: interrupt.signal,
          runner,
          ...(backend ? { backend } : {}),
          ...(opts.requireBusRights ? { requireBusRights: true } : {}),
          ...(opts.quiet ? {} : { onEvent: eventPrinter(out, width) }),
        });
        interrupt.dispose();
        if (opts.junit) {
          await mkdir(dirname(opts.junit), { recursive: true });
          await writeFile(opts.junit, junitXml(group));
        }
        if (opts.json) process.stdout.write(`${JSON.stringify(group, null, 2)}\n`);
        else out.write(summaryTable(group, out));
        process.exitCode = interrupt.signal.aborted ? 130 : group.status === "succeeded" ? 0 : 1;
        await runner.close();
      },
    );
}

export function summaryTable(group: GroupResult, out: NodeJS.WriteStream): string {
  const rows = group.results.map((r) => [
    r.name,
    r.status,
    r.exitCode === null ? "-" : String(r.exitCode),
    formatDuration(r.durationMs),
    r.outputFiles.length ? r.outputFiles.join(", ") : "-",
  ]);
  const header = ["AGENT", "STATUS", "EXIT", "DURATION", "OUTPUT FILES"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  const colour = (status: string, text: string) =>
    status === "succeeded" ? style.green(text, out) : style.red(text, out);
  const body = rows.map((r) => {
    const text = line(r);
    const at = text.indexOf(r[1]!, r[0]!.length);
    return text.slice(0, at) + colour(r[1]!, r[1]!.padEnd(widths[1]!)) + text.slice(at + widths[1]!);
  });
  // Each agent that did not succeed, and why: its error, else its exit and its last line.
  const errors = group.results
    .filter((r) => r.status !== "succeeded")
    .map((r) => {
      const why =
        r.error ??
        `${r.status}${r.exitCode === null ? "" : ` (exit ${r.exitCode})`}${lastLines(r, 1)[1] ? `; last line: ${lastLines(r, 1)[1]!.trim()}` : ""}`;
      return `  ${r.name}: ${why.split("\n").map(printable).join("\n    ")}`;
    });
  const denied = [
    ...group.results.flatMap((r) => refusedLines(r, out)),
    ...group.results.flatMap((r) => (r.warnings ?? []).map((w) => style.yellow(`${r.name}: ${printable(w)}`, out))),
  ];
  const verdict =
    group.status === "succeeded"
      ? style.green(
          `✔ ${group.name}: ${group.results.length === 1 ? "its agent" : `all ${group.results.length} agents`} succeeded`,
          out,
        )
      : style.red(
          `✖ ${group.name}: ${group.results.filter((r) => r.status !== "succeeded").length} of ${group.results.length} agents did not succeed`,
          out,
        );
  return [
    "",
    style.bold(line(header), out),
    ...body,
    ...(errors.length ? ["", ...errors] : []),
    ...(denied.length ? ["", ...denied] : []),
    "",
    `${verdict} in ${formatDuration(group.durationMs)} · outputs in ${relative(process.cwd(), group.outputDir) || "."}`,
    "",
  ].join("\n");
}
