/**
 * The host side of one gated run. Inside the sandbox, the agent's 127.0.0.1:PORT is DNATed to the
 * airlock bridge's gateway; on the host, one of two paths takes it on to the host's 127.0.0.1:PORT:
 *
 * - kernel (the runner is root): a DNAT rule for this agent's address and port only (like Docker's
 *   published ports without its userland proxy). Packets never leave the kernel. The runner also
 *   opens, in the host's filter chains, exactly what this agent's policy allows — its loopback
 *   ports and its direct endpoints — bound to its own port on the bridge (host-netfilter.ts), so
 *   the host accepts nothing else from the bridge.
 * - forwarder (any other runner): a user-space forwarder per endpoint on the gateway, accepting
 *   only this agent's address. A runner that is not root cannot change the host's netfilter, so
 *   there is no host-side filter on this path.
 *
 * AIRLOCK_LOOPBACK=forwarder|kernel overrides the choice of path for localhost endpoints. A broker
 * whose refusals are read off its connections (MQTT: bus/wire-taps.ts) has a forwarder on either
 * path, since the kernel path passes nothing through the runner.
 *
 * HTTPS services listed by name always go through the egress proxy on the gateway (run/https-egress.ts),
 * on either path: it decides each connection by the name it asks for, which no kernel rule can.
 */
import { GateError } from "../../../errors.js";
import type { DeniedConnection } from "../../../gate/denied.js";
import { HttpsEgress, type TerminatingInput } from "../../../run/https-egress.js";
import { LoopbackForwarder } from "../../../run/loopback-forwarder.js";
import type { WireTaps } from "../../../bus/wire-taps.js";
import {
  AGENTS_FWD_CHAIN,
  AGENTS_IN_CHAIN,
  applyRunRules,
  ensureHostChains,
  NAT_CHAIN,
  peerMatch,
  runComment,
  type Bridge,
  type BridgePeer,
} from "./host-netfilter.js";
import type { GatePlan, Resolver } from "../../../gate/plan.js";
import { loopbackSetting } from "../../../settings.js";

export type LoopbackMode = "kernel" | "forwarder";

/** What one run uses on the host. */
export interface HostSide {
  /** For each loopback route (same order): the gateway port the sandbox DNATs the agent's localhost port to. */
  readonly gatewayPorts: number[];
  /** Whether the host's filter chains guard this run (root runners). */
  readonly filtered: boolean;
  /** The egress proxy's ports for HTTPS by name, when the policy lists services. */
  readonly https?: { ports: number[]; dns: number };
  /** What the egress proxy refused so far. */
  denials(): DeniedConnection[];
  /** Let this agent's traffic through (before the agent can connect). */
  allow(peer: BridgePeer): Promise<void>;
  close(): Promise<void>;
}

export function loopbackMode(env: NodeJS.ProcessEnv = process.env): LoopbackMode {
  return loopbackSetting(env) ?? (hostFilterAvailable() ? "kernel" : "forwarder");
}

/** Root on Linux: the runner can change the host's netfilter. */
export function hostFilterAvailable(): boolean {
  return process.getuid?.() === 0 && process.platform === "linux";
}

export async function openHostSide(
  mode: LoopbackMode,
  bridge: Bridge,
  plan: Pick<GatePlan, "loopback" | "direct" | "https">,
  run: { runId: string; resolver?: Resolver; terminating?: TerminatingInput; taps?: WireTaps },
): Promise<HostSide> {
  if (mode === "kernel" && !hostFilterAvailable())
    throw new GateError("AIRLOCK_LOOPBACK=kernel needs a root runner", "unset AIRLOCK_LOOPBACK, or run as root");
  const filtered = hostFilterAvailable();
  if (filtered) await ensureHostChains(bridge);
  // A broker whose refusals are read off its connections (a tap) goes through a forwarder on either path.
  const taps = plan.loopback.map((r) => run.taps?.onPort(r.port));
  const forwarded = taps.map((tap) => mode === "forwarder" || tap !== undefined);
  const opened = await Promise.all(
    plan.loopback.map((r, i) =>
      forwarded[i] ? LoopbackForwarder.listen(bridge.gateway, r.target, taps[i]) : undefined,
    ),
  );
  const forwarders = opened.filter((f): f is LoopbackForwarder => f !== undefined);
  const egress = plan.https.length
    ? await HttpsEgress.open(bridge.gateway, plan.https, {
        localAddress: bridge.gateway,
        ...(run.resolver ? { resolver: run.resolver } : {}),
        ...(run.terminating ? { terminating: run.terminating } : {}),
      }).catch(async (err) => {
        await Promise.all(forwarders.map((f) => f.close()));
        throw err;
      })
    : undefined;
  const gatewayPorts = plan.loopback.map((r, i) => opened[i]?.port ?? r.target.port);
  const https = egress?.ports;
  const added: HostRule[] = [];
  return {
    gatewayPorts,
    filtered,
    ...(https ? { https } : {}),
    denials: () => egress?.denials() ?? [],
    async allow(peer) {
      forwarders.forEach((f) => {
        f.allow(peer.ip);
      });
      egress?.allow(peer.ip);
      if (!filtered) return;
      const rules = hostRules({
        mode,
        forwarded,
        bridge,
        plan,
        gatewayPorts,
        peer,
        runId: run.runId,
        ...(https ? { https } : {}),
      });
      await applyRunRules("add", rules);
      added.push(...rules);
    },
    async close() {
      await Promise.all([...forwarders.map((f) => f.close()), egress?.close()]);
      const rules = added.splice(0);
      // Best effort at the end of a run: rules left name a run that is gone, and cleanup removes them.
      if (rules.length) await applyRunRules("delete", rules).catch(() => {});
    },
  };
}

/** One rule in the host's netfilter for one run. */
export interface HostRule {
  table: "nat" | "filter";
  rule: string[];
}

/**
 * The host rules of one agent on the kernel path: its loopback ports DNATed to the host's loopback
 * and accepted there only as DNATed; on the forwarder path, its forwarders' ports; and its direct
 * endpoints (one of the host's own addresses, INPUT, or beyond it, FORWARD). Each names the agent's
 * address and port on the bridge and carries its run's comment.
 */
export function hostRules(r: {
  mode: LoopbackMode;
  /** Per loopback route, whether a forwarder serves it (default: all on the forwarder path, none on the kernel's). */
  forwarded?: boolean[];
  bridge: Bridge;
  plan: Pick<GatePlan, "loopback" | "direct">;
  gatewayPorts: number[];
  /** The egress proxy's ports and its DNS answerer's (HTTPS by name). */
  https?: { ports: number[]; dns: number };
  peer: BridgePeer;
  runId: string;
}): HostRule[] {
  const from = peerMatch(r.peer);
  const tag = runComment(r.runId);
  /** Accept this agent's new TCP (UDP) packets to ip:port (`origin`: only those DNATed from there). */
  const acceptNew = (
    chain: string,
    ip: string,
    port: number | string,
    origin: string[] = [],
    protocol: "tcp" | "udp" = "tcp",
  ): HostRule => ({
    table: "filter",
    rule: ["-A", chain, ...from, "-d", `${ip}/32`, "-p", protocol, "-m", protocol, "--dport", String(port)].concat([
      "-m",
      "conntrack",
      "--ctstate",
      "NEW",
      ...origin,
      ...tag,
      "-j",
      "ACCEPT",
    ]),
  });
  const rules: HostRule[] = [];
  r.plan.loopback.forEach((route, i) => {
    const port = String(r.gatewayPorts[i]);
    if (r.forwarded?.[i] ?? r.mode === "forwarder") {
      rules.push(acceptNew(AGENTS_IN_CHAIN, r.bridge.gateway, port));
      return;
    }
    const { host, port: targetPort } = route.target;
    rules.push({
      table: "nat",
      rule: ["-A", NAT_CHAIN, ...from, "-d", `${r.bridge.gateway}/32`, "-i", r.bridge.interface, "-p", "tcp"].concat([
        "-m",
        "tcp",
        "--dport",
        port,
        ...tag,
        "-j",
        "DNAT",
        "--to-destination",
        `${host}:${targetPort}`,
      ]),
    });
    rules.push(
      acceptNew(AGENTS_IN_CHAIN, host, targetPort, ["--ctorigdst", r.bridge.gateway, "--ctorigdstport", port]),
    );
  });
  for (const d of r.plan.direct)
    for (const chain of [AGENTS_IN_CHAIN, AGENTS_FWD_CHAIN]) rules.push(acceptNew(chain, d.ip, d.port));
  if (r.https) {
    for (const port of r.https.ports) rules.push(acceptNew(AGENTS_IN_CHAIN, r.bridge.gateway, port));
    rules.push(acceptNew(AGENTS_IN_CHAIN, r.bridge.gateway, r.https.dns, [], "udp"));
  }
  return rules;
}
