/**
 * warm-pool: fan a task out to one agent per item, the way an orchestrator does with a tool call,
 * with a runner that keeps sandboxes ready. The first worker starts cold (nothing of its shape is
 * ready yet); from then on each claims a sandbox the pool started while the others ran, and its first
 * line comes in tens of milliseconds. Every sandbox runs one worker and is removed.
 *
 *   npm run demo:warm            (or: node examples/warm-pool/fan-out.mjs [items...])
 */
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRunner } from "airlock";

const here = import.meta.dirname;
const items = process.argv.slice(2).length ? process.argv.slice(2) : ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
const out = await mkdtemp(join(tmpdir(), "airlock-warm-pool-"));
const group = { name: "fan-out", runId: `fan-out-${randomBytes(3).toString("hex")}` };

// A long-lived runner with a warm pool of 2 sandboxes per shape; close() removes them.
const runner = createRunner({ pool: { size: 2, idleSeconds: 60 } });
console.log(`fanning out ${items.length} items, one agent each (output in ${out})\n`);
console.log("ITEM      START  FIRST LINE  RESULT");
for (const item of items) {
  const result = await runner.runAgent({
    agent: join(here, "worker.ts"),
    policy: join(here, "worker.yaml"),
    outputDir: join(out, item),
    env: { ITEM: item },
    name: `worker-${item}`,
    group,
  });
  const firstLine = result.startup?.stages.released ?? NaN;
  const how = result.startup?.mode ?? "?";
  console.log(`${item.padEnd(9)} ${how.padEnd(5)}  ${String(firstLine).padStart(7)} ms  ${result.status}${result.error ? `: ${result.error}` : ` ${JSON.stringify(result.returnValue)}`}`);
  if (result.status !== "succeeded") process.exitCode = 1;
}
await runner.close();
console.log("\nFIRST LINE: ms from runAgent() to the moment the agent's code may run (result.startup.stages.released).");
