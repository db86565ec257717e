/**
 * `airlock sdk-run --request FILE`: the command the Python front end (`pip install <airlock>/python`,
 * `from isolated_agents_sdk import run_agent`) drives for each run_agent call. The request is
 * run_agent's arguments as JSON; the agent's lines stream on stderr as `airlock run` prints them,
 * and stdout gets one JSON object: the run's result, or `{"error": {code, message, fix}}` when it
 * could not start (a policy problem in the SDK's terms, an unpinnable package, a bad rights file).
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
    .description("run one agent for the Python front end (isolated_agents_sdk.run_agent); request as JSON")
    .requiredOption("--request <file>", "run_agent's arguments as JSON (- for stdin)")
    .option("-q, --quiet", "do not stream the agent's output")
    .action(async (opts: { request: string; quiet?: boolean } & BackendFlags) => {
      const text = opts.request === "-" ? await readStdin() : await readFile(opts.request, "utf8");
      if (text.length > MAX_REQUEST_BYTES) throw new UsageError(`--request: more than ${MAX_REQUEST_BYTES} bytes`);
      const { parseSdkRequest, runSdkAgent } = await import("../../sdk/run-sdk-agent.js");
      const { createRunner } = await import("../../runner.js");
      const runner = createRunner({ gatePoolSize: 0, ...runnerBackendOptions(opts) });
      const interrupt = onInterrupt("the agent");
      try {
        let request: ReturnType<typeof parseSdkRequest>;
        try {
          request = parseSdkRequest(JSON.parse(text));
        } catch (err) {
          if (err instanceof SyntaxError) throw new UsageError(`--request: not JSON (${err.message})`);
          throw err;
        }
        const result = await runSdkAgent(request, {
          runner,
          signal: interrupt.signal,
          ...(opts.quiet ? {} : { onEvent: eventPrinter(process.stderr) }),
        });
        for (const note of result.sdk.notes) process.stderr.write(`${result.name}: ${note}\n`);
        printSummary(result, process.stderr, "each line says where it goes");
        process.stdout.write(`${JSON.stringify(result)}\n`);
        process.exitCode = exitCodeFor(result);
      } catch (err) {
        if (!(err instanceof AirlockError)) throw err;
        // The front end raises this as its own typed error; the message is for the terminal too.
        process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message, fix: err.fix } })}\n`);
        throw err;
      } finally {
        interrupt.dispose();
        await runner.close();
      }
    });
}

async function readStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) {
    text += chunk;
    if (text.length > MAX_REQUEST_BYTES) break;
  }
  return text;
}
