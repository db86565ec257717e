/**
 * The agent container's entrypoint. By the time this runs the egress gate is already in force
 * (the container joined a network namespace whose rules were applied first) and the process has
 * no capabilities. It loads the agent module; a module that default-exports defineAgent(...) is run
 * with a context, a plain script just runs when imported. Anything that is not a JavaScript module
 * (`python3 x.py`, in an image derived from the agent image) is run as a command.
 */
import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import { whenAborted } from "./abort.js";
import { createBus } from "./bus/index.js";
import { createLogger, createOutput, signalReady, type AgentContext } from "./context.js";
import { denials } from "./denials.js";
import { isAgentDefinition } from "./index.js";
import { encodeControl } from "./protocol.js";

// The bundled agent carries an inline source map: its stack traces name the user's files and lines
// (/opt/agent/run/producer.ts:7:9), not the bundle's.
process.setSourceMapsEnabled(true);

const stop = new AbortController();
let managed = false;

process.on("SIGTERM", () => {
  stop.abort(new Error("the runner stopped this agent (SIGTERM)"));
  // A plain script that handles SIGTERM itself decides what to do; one that does not ends as SIGTERM would end it.
  if (!managed && process.listenerCount("SIGTERM") === 1) process.exit(143);
});

function flushAndExit(code: number): void {
  process.exitCode = code;
  // Let stdout/stderr drain before the exit so no line is lost.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

/** Run argv as a command: signals passed on, its exit code (or 128 + signal) is ours. */
function runCommand(argv: string[]): void {
  managed = true;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: "inherit" });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => child.kill(sig));
  child.on("error", (err) => {
    console.error(`airlock: cannot run ${argv[0]}: ${err.message}`);
    flushAndExit(127);
  });
  child.on("exit", (code, signal) =>
    flushAndExit(
      code ??
        128 +
          (signal ? (({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 } as Record<string, number>)[signal] ?? 1) : 1),
    ),
  );
}

/** Run the agent (argv: the entry, or a command). The runtime on standby (standby.ts) calls this once its start line came. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const entry = argv[0] ?? process.env.AIRLOCK_AGENT_ENTRY;
  if (!entry) {
    console.error("airlock: no agent entry given");
    return flushAndExit(2);
  }
  if (!/\.(m|c)?js$/.test(entry)) return runCommand(argv);
  const mod = (await import(pathToFileURL(entry).href)) as { default?: unknown };
  if (!isAgentDefinition(mod.default)) return; // a plain script: it ran on import
  managed = true;
  const env = Object.freeze({ ...process.env }) as Readonly<Record<string, string>>;
  const name = env.AIRLOCK_AGENT_NAME ?? "agent";
  const bus = createBus(name);
  const ctx: AgentContext = {
    env,
    name,
    bus,
    output: createOutput(env.AIRLOCK_OUTPUT_DIR ?? "/output"),
    log: createLogger(),
    signal: stop.signal,
    stopped: () => whenAborted(stop.signal),
    ready: signalReady,
    denials,
  };
  // A pending promise does not keep Node alive: an agent that only awaits ctx.signal must not exit early.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const value = await Promise.resolve(mod.default.run(ctx)).finally(async () => {
    clearInterval(keepAlive);
    await bus.close();
  });
  if (value !== undefined) process.stdout.write(`${encodeControl({ type: "result", value: toJson(value) })}\n`);
  // An agent that set process.exitCode (as a plain Node program would) exits with it.
  flushAndExit(typeof process.exitCode === "number" ? process.exitCode : Number(process.exitCode ?? 0) || 0);
}

function toJson(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value));
  } catch {
    return String(value);
  }
}

/** Run it: as the image's entrypoint, or from the runtime on standby. */
export function start(argv?: string[]): void {
  main(argv).catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    flushAndExit(1);
  });
}

// Run as the image's entrypoint (the main module); the runtime on standby imports it and calls start() itself.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) start();
