/**
 * The Node runtime on standby in a sandbox (images/agent/airlock-init.sh): started, with the
 * bootstrap's modules loaded, before anything about the agent is known, so a claimed sandbox runs its
 * agent's first line in a few milliseconds instead of after Node's start. It holds no agent code, no
 * variable of the run and no connection; the sandbox drops every packet until the run's rules are in
 * force. Its start line arrives on fd 3 once they are, and only then does anything of the agent run:
 *
 *   @base64(arg)... NAME=base64(value)...   (the command line: node, the bootstrap, the entry)
 */
import { closeSync, readSync } from "node:fs";
// The bootstrap and what it imports (the bus clients among them), loaded now rather than after the claim.
import { start } from "./bootstrap.js";
import { parseStartTokens } from "./start-line.js";

const START_FD = 3;
const BOOTSTRAP = /\/bootstrap\.js$/;

/** One line from fd 3, read as it arrives (nothing else runs meanwhile). */
function readStartLine(): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(START_FD, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EAGAIN") continue;
      throw err;
    }
    if (n === 0) break;
    const at = buf.subarray(0, n).indexOf(10);
    chunks.push(Buffer.from(buf.subarray(0, at < 0 ? n : at)));
    if (at >= 0) break;
  }
  closeSync(START_FD);
  return Buffer.concat(chunks).toString();
}

function main(): void {
  const { argv, env } = parseStartTokens(readStartLine());
  if (!BOOTSTRAP.test(argv[1] ?? ""))
    throw new Error(`airlock: the runtime on standby starts the bootstrap, not ${argv.join(" ")}`);
  Object.assign(process.env, env);
  process.argv = [process.argv[0]!, ...argv.slice(1)];
  start(argv.slice(2));
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(125);
}
