/**
 * What agent code gets: its environment, its output folder, a logger, a stop signal and a way to
 * say it is ready. Bus clients are added by the bus module.
 */
import { mkdir, writeFile, appendFile } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import type { Bus } from "./bus/index.js";
import type { Refusal } from "./denials.js";
import { encodeControl } from "./protocol.js";

export interface AgentOutput {
  /** The output folder inside the container (/output), mounted from the host. */
  readonly dir: string;
  /** Absolute path of `name` inside the output folder; throws if it would escape it. */
  path(name: string): string;
  write(name: string, data: string | Uint8Array): Promise<string>;
  writeJson(name: string, value: unknown): Promise<string>;
  appendLine(name: string, line: string): Promise<string>;
}

export interface AgentLogger {
  (...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface AgentContext {
  /** The agent's environment: exactly what its policy lets through, plus AIRLOCK_* variables. */
  readonly env: Readonly<Record<string, string>>;
  readonly output: AgentOutput;
  readonly log: AgentLogger;
  /** Aborted when the runner stops the agent (timeout, cancel): flush and return before the grace ends. */
  readonly signal: AbortSignal;
  /**
   * Resolves when the runner stops the agent, at once if it already has: `await ctx.stopped()` is
   * the way to serve until then. (A listener added to `signal` after it aborted is never called.)
   */
  stopped(): Promise<void>;
  /** Tell the runner this agent is ready (e.g. a consumer that has subscribed). */
  ready(): void;
  /**
   * What the gate, the egress proxy and the brokers refused this agent so far, each with the policy
   * line that would allow it (or why none can): the entries the run's result will list. Asks the
   * runner for a fresh list and waits up to `waitMs` (3 s) for it (on a Pod each answer is an exec,
   * about a second). Empty where the runner keeps no live list.
   */
  denials(options?: { waitMs?: number }): Promise<Refusal[]>;
  /** The agent's name, as the runner knows it. */
  readonly name: string;
  /** Bus clients and pattern helpers (Redis, RabbitMQ, Kafka), configured from the policy's variables. */
  readonly bus: Bus;
}

export function createOutput(dir: string): AgentOutput {
  const root = resolve(dir);
  const path = (name: string) => {
    const full = resolve(root, name);
    if (full !== root && !full.startsWith(root + sep)) throw new Error(`output path "${name}" is outside ${root}`);
    return full;
  };
  const prepare = async (name: string) => {
    const full = path(name);
    await mkdir(dirname(full), { recursive: true });
    return full;
  };
  return {
    dir: root,
    path,
    async write(name, data) {
      const full = await prepare(name);
      await writeFile(full, data);
      return full;
    },
    async writeJson(name, value) {
      const full = await prepare(name);
      await writeFile(full, `${JSON.stringify(value, null, 2)}\n`);
      return full;
    },
    async appendLine(name, line) {
      const full = await prepare(name);
      await appendFile(full, line.endsWith("\n") ? line : `${line}\n`);
      return full;
    },
  };
}

export function createLogger(): AgentLogger {
  const log = ((...args: unknown[]) => console.log(...args)) as AgentLogger;
  log.info = (...args) => console.log(...args);
  log.warn = (...args) => console.error("warning:", ...args);
  log.error = (...args) => console.error("error:", ...args);
  return log;
}

let readySent = false;
export function signalReady(): void {
  if (readySent) return;
  readySent = true;
  process.stdout.write(`${encodeControl({ type: "ready" })}\n`);
}
