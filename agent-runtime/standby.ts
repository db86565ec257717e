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

/** The start line's tokens: the command line, then the variables. */
export function parseStartTokens(line: string): { argv: string[]; env: Record<string, string> } {
  const argv: string[] = [];
  const env: Record<string, string> = {};
  for (const token of line.split(" ").filter(Boolean)) {
    if (token.startsWith("@")) argv.push(Buffer.from(token.slice(1), "base64").toString());
    else {
      const at = token.indexOf("=");
      const name = token.slice(0, at);
      if (at < 1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a variable on the start line: ${token.slice(0, 40)}`);
      env[name] = Buffer.from(token.slice(at + 1), "base64").toString();
    }
  }
  return { argv, env };
}

function main(): void {
  const { argv, env } = parseStartTokens(readStartLine());
  if (!BOOTSTRAP.test(argv[1] ?? "")) throw new Error(`airlock: the runtime on standby starts the bootstrap, not ${argv.join(" ")}`);
  Object.assign(process.env, env);
  process.argv = [process.argv[0]!, ...argv.slice(1)];
  start(argv.slice(2));
}

// Run as the standby entry (not when a test imports parseStartTokens).
if (process.argv[1] && /\/standby\.js$/.test(process.argv[1])) {
  try {
    main();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(125);
  }
}
