import { relative } from "node:path";
import type { Command } from "commander";
import { onInterrupt } from "../interrupt.js";
import { setGatePoolSize } from "../../gate/pool.js";
import { containersRemoved, runAgent, type RunEvent } from "../../run/run-agent.js";
import type { AgentResult } from "../../run/result.js";
import { exitCodeFor } from "../exit-codes.js";
import { agentColor, formatDuration, style } from "../style.js";

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("run one agent in a policy-gated container")
    .argument("<agent>", "the agent: a .ts or .js file")
    .requiredOption("-p, --policy <file>", "policy YAML file")
    .requiredOption("-o, --output <dir>", "host folder mounted read-write at /output")
    .option("-w, --workdir <dir>", "host folder mounted read-only at /workspace", ".")
    .option("-e, --env <NAME=VALUE...>", "value for a variable the policy's env.allow lists (repeatable)")
    .option("--name <name>", "name shown in logs and the result")
    .option("--json", "print the result as JSON on stdout (agent output goes to stderr)")
    .option("-q, --quiet", "do not stream the agent's output")
    .addHelpText(
      "after",
      `
Exit code: the agent's own; 124 when it timed out; 130 when cancelled; 125 when airlock could not run it.
The result is also written beside the output folder, e.g. out/hello.result.json.

Example:
  airlock run examples/hello/agent.ts --policy policies/hello.yaml --output out/hello`,
    )
    .action(async (agent: string, opts: { policy: string; output: string; workdir: string; env?: string[]; name?: string; json?: boolean; quiet?: boolean }) => {
      const env = parseEnvPairs(opts.env ?? []);
      // One run: no gate to keep ready for a next one.
      setGatePoolSize(0);
      const interrupt = onInterrupt("the agent");
      const log = opts.json ? process.stderr : process.stdout;
      const result = await runAgent({
        agent,
        policy: opts.policy,
        outputDir: opts.output,
        workingDir: opts.workdir,
        ...(Object.keys(env).length ? { env } : {}),
        ...(opts.name ? { name: opts.name } : {}),
        signal: interrupt.signal,
        ...(opts.quiet ? {} : { onEvent: eventPrinter(log) }),
      });
      interrupt.dispose();
      if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
      else printSummary(result, log);
      process.exitCode = exitCodeFor(result);
      await containersRemoved();
    });
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

export class UsageError extends Error {}

/** Streams agent lines prefixed with the agent's name, and airlock's own progress dimmed on stderr. */
export function eventPrinter(out: NodeJS.WriteStream, width = 0): (event: RunEvent) => void {
  const progress = process.stderr;
  return (event) => {
    const tag = (name: string, stream: NodeJS.WriteStream) => agentColor(name, stream)(`${name.padEnd(width)} |`);
    switch (event.type) {
      case "output":
        out.write(`${tag(event.agent, out)} ${event.stream === "stderr" ? style.red(event.line, out) : event.line}\n`);
        break;
      case "phase":
        progress.write(style.dim(`${tag(event.agent, progress)} · ${event.message}\n`, progress));
        break;
      case "build":
        // Show the steps, not every line docker prints.
        if (/^\s*(Step \d+\/\d+|building |installing |pulling |no registry|Successfully tagged)/.test(event.line)) {
          progress.write(style.dim(`${tag(event.agent, progress)}   ${event.line.trim().slice(0, 160)}\n`, progress));
        }
        break;
      case "ready":
        progress.write(style.dim(`${tag(event.agent, progress)} · ready\n`, progress));
        break;
      case "finished":
        break;
    }
  };
}

/** "denied by the gate" lines, so a user sees what the policy would need. */
export function deniedLines(result: AgentResult, out: NodeJS.WriteStream): string[] {
  if (!result.denied?.length) return [];
  const policy = result.policy?.source && result.policy.source !== "<inline>" ? relative(process.cwd(), result.policy.source) : "the policy";
  return [
    style.yellow(`${result.name}: the gate refused ${result.denied.length} destination${result.denied.length === 1 ? "" : "s"} (add to network.allowedEndpoints in ${policy} if the agent needs ${result.denied.length === 1 ? "it" : "them"}):`, out),
    ...result.denied.map((d) => {
      const times = `${d.countAtLeast ? "≥" : ""}${d.count}×`;
      const what = d.loopback ? `localhost:${d.destination.split(":")[1]} (not forwarded to the host)` : d.destination;
      return `  ${d.protocol.padEnd(5)} ${what.padEnd(28)} ${times}`;
    }),
  ];
}

export function printSummary(result: AgentResult, out: NodeJS.WriteStream): void {
  for (const line of deniedLines(result, out)) out.write(line + "\n");
  const ok = result.status === "succeeded";
  const mark = ok ? style.green("✔", out) : style.red("✖", out);
  const files = result.outputFiles.length;
  const where = relative(process.cwd(), result.outputDir) || ".";
  const exit = result.exitCode === null ? "" : ` (exit ${result.exitCode})`;
  const detail = result.status === "error" ? `: ${result.error}` : "";
  out.write(`${mark} ${style.bold(result.name, out)} ${result.status}${exit} in ${formatDuration(result.durationMs)} · ${files} output file${files === 1 ? "" : "s"} in ${where} · result ${relative(process.cwd(), result.resultFile)}${detail}\n`);
}
