/**
 * `airlock sdk-run`: what the Python front end (`pip install <airlock>/python-sdk`, then
 * `from isolated_agents_sdk import run_agent`) drives. `--request FILE` is one run_agent call: the
 * request is its arguments as JSON, the agent's lines stream on stderr as `airlock run` prints them,
 * and stdout gets one JSON object: `{"result": …}`, or `{"error": {code, message, fix}}` when it
 * could not start (a policy problem in the SDK's terms, an unpinnable package, a bad rights file).
 * `--serve` is a long-lived runner (`airlock_sdk.Runner`, with `--pool` its warm pool): requests and
 * answers one per line, tagged with the caller's id.
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { AirlockError } from "../../errors.js";
import { addBackendFlags, runnerBackendOptions, type BackendFlags } from "../backend-flag.js";
import { exitCodeFor, UsageError } from "../exit-codes.js";
import { onInterrupt } from "../interrupt.js";
import { eventPrinter, printSummary } from "./run.js";

const MAX_REQUEST_BYTES = 1024 * 1024;

export function registerSdkRun(program: Command): void {
  addBackendFlags(program.command("sdk-run"))
    .description("run agents for the Python front end (isolated_agents_sdk.run_agent); requests as JSON")
    .option("--request <file>", "one run: run_agent's arguments as JSON (- for stdin)")
    .option(
      "--serve",
      "a long-lived runner (airlock_sdk.Runner): one request per line on stdin, {id, request}; one answer per line on stdout, {id, result} or {id, error}",
    )
    .option("--pool <n>", "with --serve: sandboxes kept ready per shape (the warm pool)", (v) => Number.parseInt(v, 10))
    .option("-q, --quiet", "do not stream the agents' output")
    .action(async (opts: { request?: string; serve?: boolean; pool?: number; quiet?: boolean } & BackendFlags) => {
      if (Boolean(opts.request) === Boolean(opts.serve))
        throw new UsageError("give --request FILE (one run) or --serve");
      if (opts.pool !== undefined && !(Number.isInteger(opts.pool) && opts.pool >= 0 && opts.pool <= 64))
        throw new UsageError("--pool is a number of sandboxes from 0 to 64");
      const { createRunner } = await import("../../runner.js");
      const runner = createRunner({
        gatePoolSize: 0,
        ...(opts.serve && opts.pool ? { pool: { size: opts.pool } } : {}),
        ...runnerBackendOptions(opts),
      });
      const interrupt = onInterrupt("the agents");
      const answer = async (text: string, signal: AbortSignal): Promise<Answer> => {
        const { parseSdkRequest, runSdkAgent } = await import("../../sdk/run-sdk-agent.js");
        try {
          const result = await runSdkAgent(parseSdkRequest(parseJson(text)), {
            runner,
            signal,
            ...(opts.quiet ? {} : { onEvent: eventPrinter(process.stderr) }),
          });
          for (const note of result.sdk.notes) process.stderr.write(`${result.name}: ${note}\n`);
          printSummary(result, process.stderr, "each line says where it goes");
          return { result };
        } catch (err) {
          if (!(err instanceof AirlockError || err instanceof UsageError)) throw err;
          const code = err instanceof AirlockError ? err.code : "USAGE";
          // The front end raises this as its own typed error; the message is for the terminal too.
          process.stderr.write(`airlock: ${err.message}\n`);
          return { error: { code, message: err.message, fix: err instanceof AirlockError ? err.fix : undefined } };
        }
      };
      try {
        if (opts.request) {
          const text = opts.request === "-" ? await readStdin() : await readFile(opts.request, "utf8");
          const a = await answer(text, interrupt.signal);
          process.stdout.write(`${JSON.stringify(a)}\n`);
          process.exitCode = a.result ? exitCodeFor(a.result) : 2;
        } else await serve(answer, interrupt.signal);
      } finally {
        interrupt.dispose();
        await runner.close();
      }
    });
}

type Answer = { result: { name: string } & Parameters<typeof exitCodeFor>[0] } | { result?: undefined; error: object };

function parseJson(text: string): unknown {
  if (text.length > MAX_REQUEST_BYTES) throw new UsageError(`a request of more than ${MAX_REQUEST_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`a request that is not JSON (${(err as Error).message})`);
  }
}

/**
 * One runner for many runs: each line `{id, request}` starts a run at once (runs overlap), and its
 * answer is one line `{id, result}` or `{id, error}`, in the order they finish. Ends when stdin
 * closes and every run has answered.
 */
async function serve(
  answer: (text: string, signal: AbortSignal) => Promise<Answer>,
  signal: AbortSignal,
): Promise<void> {
  const { createInterface } = await import("node:readline");
  const running = new Set<Promise<void>>();
  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let id: unknown;
    let request: unknown;
    try {
      ({ id, request } = parseJson(line) as { id?: unknown; request?: unknown });
    } catch (err) {
      process.stdout.write(
        `${JSON.stringify({ id: null, error: { code: "USAGE", message: (err as Error).message } })}\n`,
      );
      continue;
    }
    const done: Promise<void> = answer(JSON.stringify(request ?? null), signal)
      // Anything else that went wrong is this run's answer too: the other runs go on.
      .catch((err: unknown) => ({ error: { code: "INTERNAL", message: (err as Error)?.stack ?? String(err) } }))
      .then((a) => void process.stdout.write(`${JSON.stringify({ id, ...a })}\n`))
      .finally(() => running.delete(done));
    running.add(done);
  }
  await Promise.all([...running]);
}

async function readStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) {
    text += chunk;
    if (text.length > MAX_REQUEST_BYTES) break;
  }
  return text;
}
