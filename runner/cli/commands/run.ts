import { UsageError } from "../exit-codes.js";
import { addBackendFlags, runnerBackendOptions, type BackendFlags } from "../backend-flag.js";
import { relative } from "node:path";
import type { Command } from "commander";
import { onInterrupt } from "../interrupt.js";
import type { RunEvent } from "../../run/run-agent.js";
import type { AgentResult } from "../../run/result.js";
import { describeRefusal, refusalKey } from "../../run/refusals.js";
import { exitCodeFor } from "../exit-codes.js";
import { LANGUAGE_NAMES, type LanguageName } from "../../languages/names.js";
import { agentColor, formatDuration, printable, style } from "../style.js";
import { buildProgress } from "../build-progress.js";

export function registerRun(program: Command): void {
  addBackendFlags(program.command("run"))
    .description("run one agent (a .ts, .js or .py file, or any command after --) in a policy-gated container")
    .argument("[agent]", "the agent: a .ts, .js or .py file (or give a command after --)")
    .argument("[command...]", "after --: the command to run instead, e.g. -- python3 agent.py")
    .requiredOption("-p, --policy <file>", "policy YAML file")
    .requiredOption("-o, --output <dir>", "host folder mounted read-write at /output")
    .option(
      "-r, --runtime <language>",
      "the language the agent is in, node or python (default: the policy's runtime:, else the file's extension); a command runs in its image",
    )
    .option("-i, --image <image>", "with a command: the image to run it in (default: airlock's image of the runtime)")
    .option(
      "-w, --workdir <dir>",
      "host folder mounted read-only at /workspace (secret-looking files kept out); default: none",
    )
    .option("-e, --env <NAME=VALUE...>", "value for a variable the policy's env.allow lists (repeatable)")
    .option("--name <name>", "name shown in logs and the result")
    .option("--typecheck", "type-check a TypeScript agent with your project's TypeScript before it starts")
    .option(
      "--require-bus-rights",
      "fail when a broker in the policy's bus section cannot have its rights enforced, instead of warning",
    )
    .option("--json", "print the result as JSON on stdout (agent output goes to stderr)")
    .option("-q, --quiet", "do not stream the agent's output")

    .addHelpText(
      "after",
      `
Exit code: the agent's own; 124 when it timed out; 130 when cancelled; 125 when airlock could not run it.
The result is also written beside the output folder, e.g. out/hello.result.json.
An image airlock did not build (--image) runs behind a gate container, with no capabilities.

Examples (npx airlock init hello writes hello/agent.ts and hello/policy.yaml):
  airlock run hello/agent.ts --policy hello/policy.yaml --output out/hello
  airlock run --policy hello/policy.yaml --output out/py --runtime python -- python3 -c "print('hi')"
  airlock run --policy p.yaml --output out/x --image my/agent:1 -- /app/start`,
    )
    .action(
      async (
        agentArg: string | undefined,
        rest: string[],
        opts: {
          policy: string;
          output: string;
          runtime?: string;
          image?: string;
          workdir?: string;
          env?: string[];
          name?: string;
          json?: boolean;
          quiet?: boolean;
          requireBusRights?: boolean;
          typecheck?: boolean;
        } & BackendFlags,
      ) => {
        const { agent, command } = splitTarget(agentArg, rest, process.argv);
        if (opts.image && !command)
          throw new UsageError(
            "--image goes with a command: airlock run --policy P --output O --image IMAGE -- COMMAND [ARGS...]",
          );
        if (opts.runtime !== undefined && !(LANGUAGE_NAMES as readonly string[]).includes(opts.runtime))
          throw new UsageError(`--runtime is node or python, not "${opts.runtime}"`);
        const env = parseEnvPairs(opts.env ?? []);
        // One run: no gate to keep ready for a next one.
        const { createRunner } = await import("../../runner.js");
        const runner = createRunner({ gatePoolSize: 0, ...runnerBackendOptions(opts) });
        const interrupt = onInterrupt("the agent");
        const log = opts.json ? process.stderr : process.stdout;
        const result = await runner.runAgent({
          ...(agent ? { agent } : { command: command! }),
          ...(opts.runtime ? { runtime: opts.runtime as LanguageName } : {}),
          ...(opts.image ? { image: opts.image } : {}),
          policy: opts.policy,
          outputDir: opts.output,
          ...(opts.workdir ? { workingDir: opts.workdir } : {}),
          ...(opts.requireBusRights ? { requireBusRights: true } : {}),
          ...(opts.typecheck ? { typecheck: true } : {}),
          ...(Object.keys(env).length ? { env } : {}),
          ...(opts.name ? { name: opts.name } : {}),
          signal: interrupt.signal,
          ...(opts.quiet ? {} : { onEvent: eventPrinter(log) }),
        });
        interrupt.dispose();
        if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else printSummary(result, log);
        process.exitCode = exitCodeFor(result);
        await runner.close();
      },
    );
}

/** `airlock run AGENT` or `airlock run [options] -- COMMAND ARGS...` (commander drops the `--` itself). */
export function splitTarget(
  agentArg: string | undefined,
  rest: string[],
  argv: string[],
): { agent?: string; command?: string[] } {
  const dash = argv.indexOf("--");
  const operands = [...(agentArg !== undefined ? [agentArg] : []), ...rest];
  if (dash >= 0) {
    const command = argv.slice(dash + 1);
    const before = operands.slice(0, operands.length - command.length);
    if (command.length === 0)
      throw new UsageError("nothing after --: give the command to run, e.g. -- python3 agent.py");
    if (before.length) throw new UsageError(`give either an agent file (${before[0]}) or a command after --, not both`);
    return { command };
  }
  if (operands.length === 0)
    throw new UsageError(
      "give the agent file (airlock run agent.ts ...), or a command after -- (airlock run ... -- python3 agent.py)",
    );
  if (operands.length > 1)
    throw new UsageError(`one agent file at a time (got ${operands.join(" ")}); to run a command, put it after --`);
  return { agent: operands[0]! };
}

export function parseEnvPairs(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env ${pair}: write it as NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

export { UsageError };

/** Streams agent lines prefixed with the agent's name, and airlock's own progress dimmed on stderr. */
export function eventPrinter(out: NodeJS.WriteStream, width = 0): (event: RunEvent) => void {
  const progress = process.stderr;
  const builds = buildProgress(progress);
  const tag = (name: string, stream: NodeJS.WriteStream) => agentColor(name, stream)(`${name.padEnd(width)} |`);
  const print = (stream: NodeJS.WriteStream, text: string) => builds.around(() => stream.write(text));
  /** Refusals already said, per agent: each is said once, as it first shows up. */
  const said = new Set<string>();
  return (event) => {
    switch (event.type) {
      case "output":
        print(
          out,
          `${tag(event.agent, out)} ${event.stream === "stderr" ? style.red(printable(event.line), out) : printable(event.line)}\n`,
        );
        break;
      case "phase":
        if (!["preparing", "images", "waiting"].includes(event.phase)) builds.done(tag(event.agent, progress));
        print(progress, style.dim(`${tag(event.agent, progress)} · ${printable(event.message)}\n`, progress));
        break;
      case "build":
        // One line per build (redrawn in place on a terminal), not every line the engine prints.
        builds.line(tag(event.agent, progress), printable(event.line));
        break;
      case "ready":
        print(progress, style.dim(`${tag(event.agent, progress)} · ready\n`, progress));
        break;
      case "warning":
        print(progress, style.yellow(`${tag(event.agent, progress)} ! ${printable(event.message)}\n`, progress));
        break;
      case "refused":
        for (const r of event.refusals) {
          const key = `${event.agent} ${refusalKey(r)}`;
          if (said.has(key)) continue;
          said.add(key);
          print(
            progress,
            style.yellow(`${tag(event.agent, progress)} ! refused: ${printable(describeRefusal(r))}\n`, progress),
          );
        }
        break;
      case "finished":
        break;
    }
  };
}

/**
 * The "refused" section: every refusal of the run (the gate, the HTTPS egress proxy, the brokers) on
 * one line each, with the policy line that would allow it or why none can.
 */
export function refusedLines(result: AgentResult, out: NodeJS.WriteStream, where?: string): string[] {
  const refusals = result.refusals ?? [];
  if (!refusals.length) return [];
  const policy =
    result.policy?.source && result.policy.source !== "<inline>"
      ? relative(process.cwd(), result.policy.source)
      : "the policy";
  const file = result.refusalsFile ? `; all of them in ${relative(process.cwd(), result.refusalsFile)}` : "";
  const n = refusals.length;
  return [
    style.yellow(
      `${result.name}: refused ${n} thing${n === 1 ? "" : "s"} (${where ?? `lines to add go in ${policy}`}${file}):`,
      out,
    ),
    ...refusals.map((r) => {
      const what = printable(describeRefusal(r));
      const times = `${r.countAtLeast ? "≥" : ""}${r.count}×`;
      return `  ${what.padEnd(44)} ${times.padStart(5)}  ${r.never ? "✖" : "→"} ${printable(r.fix)}`;
    }),
  ];
}

/** `linesGo`: where the refused section says lines to add go (default: the policy file). */
export function printSummary(result: AgentResult, out: NodeJS.WriteStream, linesGo?: string): void {
  for (const w of result.warnings ?? []) out.write(`${style.yellow(`${result.name}: ${printable(w)}`, out)}\n`);
  const ok = result.status === "succeeded";
  const mark = ok ? style.green("✔", out) : style.red("✖", out);
  const files = result.outputFiles.length;
  const where = relative(process.cwd(), result.outputDir) || ".";
  const exit = result.exitCode === null ? "" : ` (exit ${result.exitCode})`;
  const detail =
    result.error && result.status !== "succeeded" ? `: ${result.error.split("\n").map(printable).join("\n")}` : "";
  out.write(
    `${mark} ${style.bold(result.name, out)} ${result.status}${exit} in ${formatDuration(result.durationMs)} · ${files} output file${files === 1 ? "" : "s"} in ${where} · result ${relative(process.cwd(), result.resultFile)}${detail}\n`,
  ); // Under the summary: what was refused, and the line that would allow it.
  for (const line of refusedLines(result, out, linesGo)) out.write(`${line}\n`);
}
