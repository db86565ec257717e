/**
 * The runner's side of the in-container gate (images/agent/airlock-init.sh): the line of rules the
 * init reads on stdin, the start line once the host side is ready, and what the init prints after
 * the agent exits (the denied-connection tables and the exit code) as stdout lines tagged with a
 * nonce only the runner and the init know.
 */
import { randomBytes } from "node:crypto";
import { GateError } from "../errors.js";
import type { AgentUser } from "../run/output.js";
import { parseDeniedReport, type DeniedConnection } from "./denied.js";

const REPORT_PREFIX = "\u001eairlock-gate ";
/** The init's exit code when it could not put the rules in force (the agent never started). */
export const INIT_FAILED_EXIT = 125;

export class InitGate {
  private readonly nonce = randomBytes(16).toString("hex");
  private readonly prefix = `${REPORT_PREFIX}${this.nonce} `;
  private readonly reportLines: string[] = [];
  private reportEnded = false;
  private resolveExit!: (code: number) => void;
  /** The agent's exit code, as the init reports it once the agent has exited. */
  readonly exited = new Promise<number>((resolve) => (this.resolveExit = resolve));

  /** The line that lets the init start the agent. */
  static readonly GO = "go\n";

  /** The line the init reads on stdin. */
  rulesLine(rules: { v4: string; v6: string }, user: AgentUser): string {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    return `${b64(rules.v4)} ${b64(rules.v6)} ${user.uid} ${user.gid} ${this.nonce}\n`;
  }

  /** For LogCapture: takes the init's report lines out of the agent's output. */
  readonly intercept = (line: string): boolean => {
    if (!line.startsWith(this.prefix)) return false;
    const rest = line.slice(this.prefix.length);
    const end = /^end (\d+)$/.exec(rest);
    if (end && !this.reportEnded) {
      this.reportEnded = true;
      this.resolveExit(Number(end[1]));
    } else if (!this.reportEnded) this.reportLines.push(rest);
    return true;
  };

  /** What the gate refused during the run (empty when the agent was killed before the init could report). */
  denied(): DeniedConnection[] {
    return parseDeniedReport(this.reportLines.join("\n"));
  }

  /** The init's own error when it could not apply the rules, or undefined when it did. */
  static failure(exitCode: number, stderr: string): GateError | undefined {
    if (exitCode !== INIT_FAILED_EXIT) return undefined;
    const lines = stderr.split("\n");
    // The init's own words, and what iptables or setpriv said just before them.
    if (!lines.some((l) => l.startsWith("airlock-init:"))) return undefined;
    const said = lines.filter((l) => l.startsWith("airlock-init:") || /iptables|ip6tables|setpriv/i.test(l)).join("; ");
    return new GateError(`the egress gate failed before the agent started: ${said}`, "the host kernel must support iptables (nf_tables) inside containers");
  }
}
