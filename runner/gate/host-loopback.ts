/**
 * The host side of `localhost:PORT` endpoints. A container cannot reach the host's loopback: inside
 * the sandbox, the agent's 127.0.0.1:PORT is DNATed to the airlock bridge's gateway, and on the host
 * one of two paths takes it on to the host's 127.0.0.1:
 *
 * - kernel (when the runner may change the host's netfilter, i.e. runs as root): a DNAT rule on the
 *   airlock bridge, for this agent's address and port only, like Docker's own published ports without
 *   its userland proxy. Packets never leave the kernel: same throughput and latency as a bridge.
 *   The connection's source becomes 127.0.0.1, so the broker sees a local client (Redis' protected
 *   mode, RabbitMQ's loopback-only guest user), as it did with the forwarder.
 *   route_localnet is switched on for the airlock bridge only, and a filter rule drops anything
 *   arriving there for 127.0.0.0/8 that was not DNATed by such a rule (the CVE-2020-8558 guard).
 *   Each run's rules carry its run id and are removed when it ends; `airlock cleanup` removes those a
 *   crashed runner left.
 * - forwarder (any other runner): a user-space forwarder per endpoint, listening on the gateway,
 *   accepting only this agent's address.
 *
 * AIRLOCK_LOOPBACK=forwarder|kernel overrides the choice.
 */
import { writeFile } from "node:fs/promises";
import { execa } from "execa";
import type { AirlockNetwork } from "../docker/network.js";
import { GateError } from "../errors.js";
import { LoopbackForwarder } from "./forwarder.js";
import type { LoopbackRoute } from "./plan.js";

export type LoopbackMode = "kernel" | "forwarder";

export const NAT_CHAIN = "AIRLOCK-LOOPBACK";
export const GUARD_CHAIN = "AIRLOCK-LOOPBACK-GUARD";
const COMMENT_PREFIX = "airlock-run:";

/** The airlock network as the host sees it; a recreated network (new id) is a new interface, set up again. */
export type Bridge = Pick<AirlockNetwork, "id" | "interface" | "gateway">;

/** What one run uses to reach the host's loopback. */
export interface HostLoopback {
  /** For each route (same order): the gateway port the sandbox DNATs the agent's localhost port to. */
  readonly gatewayPorts: number[];
  /** Let this container address through (before the agent can connect). */
  allow(ip: string): Promise<void>;
  close(): Promise<void>;
}

export function loopbackMode(env: NodeJS.ProcessEnv = process.env): LoopbackMode {
  const forced = env.AIRLOCK_LOOPBACK;
  if (forced === "kernel" || forced === "forwarder") return forced;
  return process.getuid?.() === 0 && process.platform === "linux" ? "kernel" : "forwarder";
}

export async function openHostLoopback(mode: LoopbackMode, bridge: Bridge, routes: LoopbackRoute[], runId: string): Promise<HostLoopback> {
  if (routes.length === 0) return { gatewayPorts: [], allow: async () => {}, close: async () => {} };
  if (mode === "kernel") {
    await ensureHostChains(bridge);
    return new KernelLoopback(bridge, routes, runId);
  }
  const forwarders = await Promise.all(routes.map((r) => LoopbackForwarder.listen(bridge.gateway, r.target)));
  return {
    gatewayPorts: forwarders.map((f) => f.port),
    allow: async (ip) => forwarders.forEach((f) => f.allow(ip)),
    close: async () => void (await Promise.all(forwarders.map((f) => f.close()))),
  };
}

class KernelLoopback implements HostLoopback {
  readonly gatewayPorts: number[];
  private rules: string[] = [];

  constructor(
    private readonly bridge: Bridge,
    private readonly routes: LoopbackRoute[],
    private readonly runId: string,
  ) {
    this.gatewayPorts = routes.map((r) => r.target.port);
  }

  async allow(ip: string): Promise<void> {
    const rules = this.routes.map(
      (r) =>
        `-A ${NAT_CHAIN} -s ${ip}/32 -d ${this.bridge.gateway}/32 -i ${this.bridge.interface} -p tcp -m tcp --dport ${r.target.port} -m comment --comment ${COMMENT_PREFIX}${this.runId} -j DNAT --to-destination ${r.target.host}:${r.target.port}`,
    );
    await natRules("add", rules);
    this.rules.push(...rules);
  }

  async close(): Promise<void> {
    const rules = this.rules.splice(0);
    if (rules.length) await natRules("delete", rules).catch(() => {});
  }
}

/** Add or delete rule lines ("-A CHAIN ...") in the host's nat table, in one transaction. */
function natRules(op: "add" | "delete", lines: string[]): Promise<void> {
  const body = op === "add" ? lines : lines.map((l) => l.replace(/^-A /, "-D "));
  return restore(`*nat\n${body.join("\n")}\nCOMMIT\n`);
}

async function restore(input: string): Promise<void> {
  try {
    await execa("iptables-restore", ["--noflush", "--wait", "10"], { input });
  } catch (err) {
    throw new GateError(`could not update the host's netfilter rules for a localhost endpoint: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, "run the runner as root with iptables installed, or set AIRLOCK_LOOPBACK=forwarder", err);
  }
}

async function iptables(args: string[]): Promise<boolean> {
  const r = await execa("iptables", ["--wait", "10", ...args], { reject: false });
  return r.exitCode === 0;
}

const chains = new Map<string, Promise<void>>();

/** Once per process and network: the chains, their jumps, and route_localnet on the airlock bridge. */
function ensureHostChains(bridge: Bridge): Promise<void> {
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

/** The rules airlock puts into the host's own chains (removeHostChains takes them out again). */
function hostChainRules(iface: string): [table: string, chain: string, rule: string[]][] {
  return [
    // Ahead of Docker's own DNAT for published ports, which would otherwise match gateway:PORT first.
    ["nat", "PREROUTING", ["-i", iface, "-j", NAT_CHAIN]],
    // The broker sees a loopback client, as with a local process: Redis' protected mode and
    // RabbitMQ's loopback-only guest user work as they do on the host.
    ["nat", "INPUT", ["-i", iface, "-d", "127.0.0.0/8", "-m", "conntrack", "--ctstate", "DNAT", "-j", "SNAT", "--to-source", "127.0.0.1"]],
    ["filter", "INPUT", ["-i", iface, "-j", GUARD_CHAIN]],
  ];
}

async function setUpHostChains(bridge: Bridge): Promise<void> {
  const ensureChain = async (table: string, chain: string) => {
    if (!(await iptables(["-t", table, "-n", "-L", chain]))) await iptables(["-t", table, "-N", chain]);
  };
  const ensureRule = async (table: string, chain: string, rule: string[]) => {
    if (!(await iptables(["-t", table, "-C", chain, ...rule]))) {
      if (!(await iptables(["-t", table, "-I", chain, "1", ...rule]))) throw new GateError(`could not add the host rule: iptables -t ${table} -I ${chain} ${rule.join(" ")}`, "run the runner as root with iptables installed, or set AIRLOCK_LOOPBACK=forwarder");
    }
  };
  await ensureChain("nat", NAT_CHAIN);
  await ensureChain("filter", GUARD_CHAIN);
  await ensureRule("filter", GUARD_CHAIN, ["-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "DROP"]);
  for (const [table, chain, rule] of hostChainRules(bridge.interface)) await ensureRule(table, chain, rule);
  try {
    await writeFile(`/proc/sys/net/ipv4/conf/${bridge.interface}/route_localnet`, "1");
  } catch (err) {
    throw new GateError(`could not enable route_localnet on ${bridge.interface}: ${(err as Error).message}`, "run the runner as root, or set AIRLOCK_LOOPBACK=forwarder", err);
  }
}

/** Run ids that have host rules (for the orphan reaper). */
export async function runsWithHostRules(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const r = await execa("iptables", ["--wait", "10", "-t", "nat", "-S", NAT_CHAIN], { reject: false });
  if (r.exitCode !== 0) return out;
  for (const line of r.stdout.split("\n")) {
    const m = new RegExp(`--comment "?${COMMENT_PREFIX}([^" ]+)"?`).exec(line);
    if (!m || !line.startsWith("-A ")) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), line]);
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
  if (stale.length) await natRules("delete", stale).catch(() => {});
  return stale.length;
}

/** Take everything airlock added to the host's netfilter away (after the airlock network is removed). */
export async function removeHostChains(bridgeInterface: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  for (const [table, chain, rule] of hostChainRules(bridgeInterface)) {
    while (await iptables(["-t", table, "-D", chain, ...rule])) {
      // a rule added twice (two runners at once) goes too
    }
  }
  for (const [table, chain] of [["nat", NAT_CHAIN], ["filter", GUARD_CHAIN]] as const) {
    await iptables(["-t", table, "-F", chain]);
    await iptables(["-t", table, "-X", chain]);
  }
  chains.clear();
}
