/**
 * airlock's chains in the host's netfilter (root runners only), set up once per process and bridge,
 * and the per-run rules in them, tagged with the run id so that a crashed runner's rules are found
 * and removed later (`airlock cleanup`).
 *
 *   nat    PREROUTING  -i airlock0 → AIRLOCK-LOOPBACK   per run: DNAT gateway:PORT → 127.0.0.1:PORT
 *   filter INPUT       -i airlock0 → AIRLOCK-INPUT       established, the 127/8 guard, AIRLOCK-AGENTS-IN, else DROP
 *   filter DOCKER-USER -i airlock0 → AIRLOCK-FORWARD     established, AIRLOCK-AGENTS-FWD, else DROP
 *
 * So traffic from airlock's bridge reaches the host, or leaves through it, only where a running
 * agent's policy allows: an in-container gate that someone managed to subvert still reaches nothing
 * else. Per-run rules are bound to the agent's own port on the bridge (its veth, through
 * br_netfilter's physdev match; its MAC where that is off), so a container that takes another
 * agent's address cannot claim that agent's rules.
 */
import { writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { execa } from "execa";
import type { AirlockNetwork } from "../network.js";
import { GateError } from "../../../errors.js";

export const NAT_CHAIN = "AIRLOCK-LOOPBACK";
export const INPUT_CHAIN = "AIRLOCK-INPUT";
export const FORWARD_CHAIN = "AIRLOCK-FORWARD";
export const AGENTS_IN_CHAIN = "AIRLOCK-AGENTS-IN";
export const AGENTS_FWD_CHAIN = "AIRLOCK-AGENTS-FWD";
/** The chain whose DROP rule is the CVE-2020-8558 guard (127.0.0.0/8 arriving on the bridge, not DNATed). */
export const GUARD_CHAIN = INPUT_CHAIN;
const COMMENT_PREFIX = "airlock-run:";
/** Chains that hold per-run rules, by table. */
const RUN_CHAINS: [table: "nat" | "filter", chain: string][] = [
  ["nat", NAT_CHAIN],
  ["filter", AGENTS_IN_CHAIN],
  ["filter", AGENTS_FWD_CHAIN],
];

/** The airlock network as the host sees it; a recreated network (new id) is a new interface, set up again. */
export type Bridge = Pick<AirlockNetwork, "id" | "interface" | "gateway">;

/** One agent's end of the bridge: its address, and what binds rules to it. */
export interface BridgePeer {
  ip: string;
  /** The host side of its veth (matched with physdev where br_netfilter sees bridged packets). */
  hostInterface?: string;
  mac?: string;
}

export function runComment(runId: string): string[] {
  return ["-m", "comment", "--comment", `${COMMENT_PREFIX}${runId}`];
}

/** Match options that tie a rule to one agent's port on the bridge. */
export function peerMatch(peer: BridgePeer): string[] {
  if (peer.hostInterface && physdevUsable())
    return ["-s", `${peer.ip}/32`, "-m", "physdev", "--physdev-in", peer.hostInterface];
  if (peer.mac) return ["-s", `${peer.ip}/32`, "-m", "mac", "--mac-source", peer.mac];
  throw new GateError(
    `cannot tell agent ${peer.ip}'s port on the bridge apart from others (no interface or MAC address)`,
    "check the engine's health (docker info)",
  );
}

let physdev: boolean | undefined;
function physdevUsable(): boolean {
  physdev ??= (() => {
    try {
      return readFileSync("/proc/sys/net/bridge/bridge-nf-call-iptables", "utf8").trim() === "1";
    } catch {
      return false;
    }
  })();
  return physdev;
}

/** Add or delete rules (["-A", CHAIN, ...]) in one transaction per table. */
export async function applyRunRules(
  op: "add" | "delete",
  rules: { table: "nat" | "filter"; rule: string[] }[],
): Promise<void> {
  const body = (table: string) =>
    rules
      .filter((r) => r.table === table)
      .map((r) => (op === "add" ? r.rule : ["-D", ...r.rule.slice(1)]).map(quote).join(" "));
  const text = ["nat", "filter"]
    .map((t) => [t, body(t)] as const)
    .filter(([, lines]) => lines.length)
    .map(([t, lines]) => `*${t}\n${lines.join("\n")}\nCOMMIT\n`)
    .join("");
  if (text) await restore(text);
}

const quote = (s: string) => (/^[\w./:,@!=+-]+$/.test(s) ? s : `"${s.replace(/"/g, '\\"')}"`);

async function restore(input: string): Promise<void> {
  try {
    await execa("iptables-restore", ["--noflush", "--wait", "10"], { input });
  } catch (err) {
    throw new GateError(
      `could not update the host's netfilter rules: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`,
      "run the runner as root with iptables installed (or as a non-root user, with the user-space forwarder)",
      err,
    );
  }
}

async function iptables(args: string[]): Promise<boolean> {
  const r = await execa("iptables", ["--wait", "10", ...args], { reject: false });
  return r.exitCode === 0;
}

/** The rules airlock puts into chains it does not own (removeHostChains takes them out again). */
function hookRules(iface: string, forwardHook: string): [table: string, chain: string, rule: string[]][] {
  return [
    // Ahead of Docker's own DNAT for published ports, which would otherwise match gateway:PORT first.
    ["nat", "PREROUTING", ["-i", iface, "-j", NAT_CHAIN]],
    ["filter", "INPUT", ["-i", iface, "-j", INPUT_CHAIN]],
    ["filter", forwardHook, ["-i", iface, "-j", FORWARD_CHAIN]],
  ];
}

/** airlock's own chains' fixed rules, in order. */
function chainRules(): [table: string, chain: string, rules: string[][]][] {
  const established = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"];
  return [
    ["nat", NAT_CHAIN, []],
    ["filter", AGENTS_IN_CHAIN, []],
    ["filter", AGENTS_FWD_CHAIN, []],
    [
      "filter",
      INPUT_CHAIN,
      [
        established,
        ["-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "DROP"],
        ["-j", AGENTS_IN_CHAIN],
        ["-j", "DROP"],
      ],
    ],
    ["filter", FORWARD_CHAIN, [established, ["-j", AGENTS_FWD_CHAIN], ["-j", "DROP"]]],
  ];
}

/** Docker's hook for user rules in FORWARD where it exists; FORWARD itself otherwise. */
async function forwardHook(): Promise<string> {
  return (await iptables(["-t", "filter", "-n", "-L", "DOCKER-USER"])) ? "DOCKER-USER" : "FORWARD";
}

const chains = new Map<string, Promise<void>>();

/** Once per process and network: the chains, their hooks, and route_localnet on the airlock bridge. */
export function ensureHostChains(bridge: Bridge): Promise<void> {
  let ready = chains.get(bridge.id);
  if (!ready) {
    ready = setUpHostChains(bridge).catch((err) => {
      chains.delete(bridge.id);
      throw err;
    });
    chains.set(bridge.id, ready);
  }
  return ready;
}

/**
 * What airlock 0.1 added and this version must not keep: the SNAT that made every agent a loopback
 * client of the broker (so "guest only from loopback", protected mode and `local` trust applied to
 * agents), and the old guard chain.
 */
async function removeLegacyRules(iface: string): Promise<void> {
  const gone = async (table: string, chain: string, rule: string[]) => {
    while (await iptables(["-t", table, "-D", chain, ...rule])) {
      // a rule added twice goes too
    }
  };
  await gone("nat", "INPUT", [
    "-i",
    iface,
    "-d",
    "127.0.0.0/8",
    "-m",
    "conntrack",
    "--ctstate",
    "DNAT",
    "-j",
    "SNAT",
    "--to-source",
    "127.0.0.1",
  ]);
  await gone("filter", "INPUT", ["-i", iface, "-j", "AIRLOCK-LOOPBACK-GUARD"]);
  await iptables(["-t", "filter", "-F", "AIRLOCK-LOOPBACK-GUARD"]);
  await iptables(["-t", "filter", "-X", "AIRLOCK-LOOPBACK-GUARD"]);
}

async function setUpHostChains(bridge: Bridge): Promise<void> {
  await removeLegacyRules(bridge.interface);
  const fail = (what: string) =>
    new GateError(
      `could not set up the host's netfilter for airlock's bridge: ${what}`,
      "run the runner as root with iptables installed, or as a non-root user",
    );
  for (const [table, chain, rules] of chainRules()) {
    if (!(await iptables(["-t", table, "-n", "-L", chain]))) await iptables(["-t", table, "-N", chain]);
    // Another runner may have set the chain up already: its fixed rules are then kept as they are.
    for (const [i, rule] of rules.entries()) {
      if (!(await iptables(["-t", table, "-C", chain, ...rule]))) {
        if (!(await iptables(["-t", table, "-I", chain, String(i + 1), ...rule])))
          throw fail(`iptables -t ${table} -I ${chain} ${rule.join(" ")}`);
      }
    }
  }
  for (const [table, chain, rule] of hookRules(bridge.interface, await forwardHook())) {
    if (!(await iptables(["-t", table, "-C", chain, ...rule]))) {
      if (!(await iptables(["-t", table, "-I", chain, "1", ...rule])))
        throw fail(`iptables -t ${table} -I ${chain} 1 ${rule.join(" ")}`);
    }
  }
  try {
    await writeFile(`/proc/sys/net/ipv4/conf/${bridge.interface}/route_localnet`, "1");
  } catch (err) {
    throw new GateError(
      `could not enable route_localnet on ${bridge.interface}: ${(err as Error).message}`,
      "run the runner as root, or set AIRLOCK_LOOPBACK=forwarder",
      err,
    );
  }
}

/** Run ids that have host rules, with their rules as iptables -S prints them (for the orphan reaper). */
export async function runsWithHostRules(): Promise<Map<string, { table: "nat" | "filter"; rule: string[] }[]>> {
  const out = new Map<string, { table: "nat" | "filter"; rule: string[] }[]>();
  for (const [table, chain] of RUN_CHAINS) {
    const r = await execa("iptables", ["--wait", "10", "-t", table, "-S", chain], { reject: false });
    if (r.exitCode !== 0) continue;
    for (const line of r.stdout.split("\n")) {
      const m = new RegExp(`--comment "?${COMMENT_PREFIX}([^" ]+)"?`).exec(line);
      if (!m || !line.startsWith("-A ")) continue;
      const rule = (line.match(/"[^"]*"|\S+/g) ?? []).map((t) => t.replace(/^"|"$/g, ""));
      out.set(m[1]!, [...(out.get(m[1]!) ?? []), { table, rule }]);
    }
  }
  return out;
}

/**
 * Remove the host rules of runs that have no container left. The rules are read before the
 * containers are listed, so a run that starts meanwhile keeps its rules.
 */
export async function removeStaleHostRules(runsWithContainers: () => Promise<Set<string>>): Promise<number> {
  if (process.getuid?.() !== 0) return 0;
  const withRules = await runsWithHostRules();
  if (withRules.size === 0) return 0;
  const alive = await runsWithContainers();
  const stale = [...withRules].filter(([runId]) => !alive.has(runId)).flatMap(([, rules]) => rules);
  // Stale rules that resist are tried again by the next cleanup; they name runs that are gone.
  if (stale.length) await applyRunRules("delete", stale).catch(() => {});
  return stale.length;
}

/** Take everything airlock added to the host's netfilter away (after the airlock network is removed). */
export async function removeHostChains(bridgeInterface: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  await removeLegacyRules(bridgeInterface);
  for (const hook of ["DOCKER-USER", "FORWARD"]) {
    for (const [table, chain, rule] of hookRules(bridgeInterface, hook)) {
      while (await iptables(["-t", table, "-D", chain, ...rule])) {
        // a rule added twice (two runners at once) goes too
      }
    }
  }
  chains.clear();
  // Another airlock bridge on this host (a second engine's) still jumps to the chains: they stay, rules and all.
  const input = await execa("iptables", ["--wait", "10", "-t", "filter", "-S", "INPUT"], { reject: false });
  if (input.stdout.split("\n").some((line) => line.endsWith(`-j ${INPUT_CHAIN}`))) return;
  // Flush first: the fixed chains jump to the per-run ones, which can only go once nothing refers to them.
  for (const [table, chain] of chainRules().reverse()) await iptables(["-t", table, "-F", chain]);
  for (const [table, chain] of chainRules().reverse()) await iptables(["-t", table, "-X", chain]);
}
