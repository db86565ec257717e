/**
 * The start line's tokens as a sandbox's init hands them to the runtime on standby (standby.ts): the
 * agent's command line (`@base64` each), then its variables (`NAME=base64`). The runner writes them
 * (runner/gate/protocol.ts goLine); test/unit/protocol.test.ts checks that both sides agree.
 */
export function parseStartTokens(line: string): { argv: string[]; env: Record<string, string> } {
  const argv: string[] = [];
  const env: Record<string, string> = {};
  for (const token of line.split(" ").filter(Boolean)) {
    if (token.startsWith("@")) argv.push(Buffer.from(token.slice(1), "base64").toString());
    else {
      const at = token.indexOf("=");
      const name = token.slice(0, at);
      if (at < 1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new Error(`not a variable on the start line: ${token.slice(0, 40)}`);
      env[name] = Buffer.from(token.slice(at + 1), "base64").toString();
    }
  }
  return { argv, env };
}
