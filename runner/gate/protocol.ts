/**
 * The contract between the runner (TypeScript) and the two gate scripts that run inside containers
 * (images/agent/airlock-init.sh, images/gate/gate.sh): the lines each side writes, the exit code of a
 * failed gate, the capability masks the scripts check, and the kernel tables the rules count
 * refusals in. Both sides must agree on every value here; test/unit/protocol.test.ts reads the
 * scripts and checks that they do.
 */

/** Exit code of the init when it could not put the rules in force (the agent never started). */
export const INIT_FAILED_EXIT = 125;

/** Prefix of the init's own lines on stdout (followed by the run's nonce and a word). */
export const INIT_LINE_PREFIX = "\u001eairlock-gate ";

/** The words the init writes after the prefix and nonce. */
export const INIT_WORDS = {
  /** The rules are loaded and NET_ADMIN is gone: the runner may check them and then send GO. */
  applied: "applied",
  /** The agent exited with this code; the init waits for DONE before it exits. */
  exited: "exited",
  /** After the denied tables: the report is complete. */
  end: "end",
} as const;

/** Runner → init, second line: the host side is ready and the rules checked; start the agent. */
export const GO_WORD = "go";

/**
 * How the init starts the agent: "standby" hands the command line and variables to the language
 * runtime it started as the sandbox came up (already loaded, so the agent's first line comes in a
 * few ms); "exec" starts the command line afresh (a command, or variables the runtime reads as it
 * starts, such as NODE_OPTIONS). A sandbox whose runtime is gone falls back to exec.
 */
export type StartMode = "standby" | "exec";

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The start line: `go MODE @base64(arg)... NAME=base64(value)...` — the agent's command line, then
 * its variables (on top of the image's), in that order.
 */
export function goLine(mode: StartMode, argv: readonly string[], env: Record<string, string> = {}): string {
  if (!argv.length) throw new Error("the start line needs a command line");
  const args = argv.map((a) => ` @${Buffer.from(a).toString("base64")}`);
  const pairs = Object.entries(env).map(([k, v]) => {
    if (!VARIABLE_NAME.test(k)) throw new Error(`not a variable name: ${k}`);
    return ` ${k}=${Buffer.from(v).toString("base64")}`;
  });
  return `${GO_WORD} ${mode}${args.join("")}${pairs.join("")}\n`;
}

/** The variable that tells a sandbox's init which uid:gid its runtime and agent run as. */
export const SLOT_USER_VARIABLE = "AIRLOCK_SLOT_USER";

/** Runner → init, last line: the runner has what it needs from the namespace; exit. */
export const DONE_LINE = "done\n";

/**
 * CapEff and CapBnd of the init once the rules are in force: SETGID (6), SETUID (7), SETPCAP (8)
 * and KILL (5) only — 0x1e0. The agent itself runs with an empty set.
 */
export const INIT_SUPERVISOR_CAPS = "00000000000001e0";
export const NO_CAPS = "0000000000000000";

/** Lines of the gate container. */
export const GATE_WORDS = { ready: "airlock-gate: ready", reportEnd: "airlock-gate: end of report" } as const;

/**
 * Denied-connection accounting: rules with no target only count, in hashlimit tables keyed by
 * destination, kept by the kernel per network namespace (/proc/<pid>/net/ipt_hashlimit/<table>).
 */
export const DENY_TABLES = {
  tcp: "airlock_tcp",
  udp: "airlock_udp",
  other: "airlock_other",
  loopback: "airlock_lo",
} as const;
export const DENY_TABLE_NAMES = [DENY_TABLES.tcp, DENY_TABLES.udp, DENY_TABLES.other, DENY_TABLES.loopback] as const;

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Runner → init, first line: the rules, the agent's uid:gid, and the nonce that tags the init's lines. */
export function initRulesLine(
  rules: { v4: string; v6: string },
  user: { uid: number; gid: number },
  nonce: string,
): string {
  return `${b64(rules.v4)} ${b64(rules.v6)} ${user.uid} ${user.gid} ${nonce}\n`;
}

/** Runner → gate container: the rules and how long to hold the namespace. */
export function gateRulesLine(rules: { v4: string; v6: string }, holdSeconds: number): string {
  return `${b64(rules.v4)} ${b64(rules.v6)} ${holdSeconds}\n`;
}
