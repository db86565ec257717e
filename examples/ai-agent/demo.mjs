/**
 * The AI agent example, end to end on this machine: starts the stand-in provider (provider.mjs),
 * then runs the pair with `airlock up` the way CI would — the runner trusting the provider's test CA
 * (NODE_EXTRA_CA_CERTS, as for any private CA) and holding the key (EXAMPLE_MODEL_KEY).
 *
 *   node examples/ai-agent/demo.mjs                  # TypeScript asker (fetch)
 *   node examples/ai-agent/demo.mjs python.run.yaml  # Python asker (requests, httpx)
 *
 * Against a real provider: in asker.yaml, list its API (e.g. `host: api.openai.com`, key variable
 * OPENAI_API_KEY), point MODEL_API_URL at it (env.set), export the key, and run
 * `npx airlock up examples/ai-agent/run.yaml` — no CA to trust, no provider to start.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { startProvider } from "./provider.mjs";

const HERE = import.meta.dirname;
const runFile = join(HERE, process.argv[2] ?? "run.yaml");
const key = process.env.EXAMPLE_MODEL_KEY ?? `sk-example-${randomBytes(12).toString("hex")}`;
const provider = await startProvider({ key });
const cli = join(HERE, "..", "..", "dist", "runner", "cli", "main.js");
const child = spawn(process.execPath, [cli, "up", runFile, ...process.argv.slice(3)], {
  stdio: "inherit",
  env: { ...process.env, EXAMPLE_MODEL_KEY: key, NODE_EXTRA_CA_CERTS: provider.caFile },
});
const code = await new Promise((resolve) => child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await provider.close();
process.exit(code);
