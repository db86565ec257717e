/**
 * What a policy makes any backend enforce, worked out once for all of them: the destinations
 * resolved on the host (plan.ts), the agent's /etc/hosts, and — as soon as the backend says where
 * its loopback forwarders listen — the rules for the agent's namespace and the list of every
 * destination a packet may leave for (what a second layer, such as Kubernetes' NetworkPolicy, must
 * allow too). The Docker backend (its init and container gates) and the Kubernetes backend (its
 * init container) both start from here; neither works out a rule of its own.
 */
import type { Policy } from "../policy/index.js";
import { hostsFile, planGate, type GatePlan, type Resolver } from "./plan.js";
import { ipv4Rules, ipv6Rules, type RuleSet } from "./rules.js";

/** Where a backend's loopback forwarders listen: one port per `plan.loopback` route, in its order. */
export interface Forwarders {
  /** The address the agent's namespace reaches them on (the bridge gateway, the node's address). */
  address: string;
  ports: number[];
  /** The egress proxy for HTTPS by name (run/https-egress.ts): one port per `plan.https` route, and its DNS answerer's UDP port. */
  https?: { ports: number[]; dns: number };
}

export interface Enforcement {
  /** The policy turns the network off: nothing but the agent's own loopback. */
  disabled: boolean;
  plan: GatePlan;
  /** The agent's /etc/hosts: localhost and the policy's names, pinned to what the host resolved. */
  hostsFile: string;
  /** The rules for the agent's namespace (default deny; a disabled network allows loopback only). */
  rules(forwarders: Forwarders): RuleSet;
  /** Every destination the rules let a connection leave for (TCP unless it says UDP). */
  egress(forwarders: Forwarders): { ip: string; port: number; protocol?: "udp" }[];
}

/** For the run's progress: what the gate will let out (said before the names are resolved). */
export function gateSummary(policy: Pick<Policy, "network">): string {
  const { network } = policy;
  if (network.disabled) return "network disabled";
  const listed = [...network.allowedEndpoints.map((e) => e.raw), ...network.https.map((s) => `https://${s.raw}`)];
  return `gating egress to ${listed.join(", ")}`;
}

const NO_NETWORK_HOSTS = "127.0.0.1\tlocalhost\n";

/** The one function from a policy to what its gate enforces; names are resolved now, on the host. */
export async function enforcementFor(
  policy: Pick<Policy, "network" | "source">,
  resolver?: Resolver,
): Promise<Enforcement> {
  const { network } = policy;
  const plan: GatePlan = network.disabled
    ? { loopback: [], direct: [], https: [], hosts: [] }
    : await planGate(network, policy.source, resolver);
  const forwarded = (f: Forwarders) => {
    if (f.ports.length !== plan.loopback.length)
      throw new Error(`${plan.loopback.length} loopback routes need as many forwarder ports, got ${f.ports.length}`);
    const https = f.https?.ports ?? [];
    if (https.length !== plan.https.length)
      throw new Error(`${plan.https.length} HTTPS routes need as many proxy ports, got ${https.length}`);
    return [
      ...plan.loopback.map((route, i) => ({ port: route.port, forwarderPort: f.ports[i]! })),
      ...plan.https.map((route, i) => ({ port: route.port, forwarderPort: https[i]! })),
    ];
  };
  const dnsPort = (f: Forwarders) => (plan.https.length ? f.https?.dns : undefined);
  return {
    disabled: network.disabled,
    plan,
    hostsFile: network.disabled ? NO_NETWORK_HOSTS : hostsFile(plan),
    rules: (f) => {
      const dns = dnsPort(f);
      return {
        v4: ipv4Rules({
          gateway: f.address,
          forwarded: forwarded(f),
          direct: plan.direct,
          ...(dns ? { dnsPort: dns } : {}),
        }),
        v6: ipv6Rules(),
      };
    },
    egress: (f) => {
      const dns = dnsPort(f);
      return [
        ...forwarded(f).map((route) => ({ ip: f.address, port: route.forwarderPort })),
        ...plan.direct.map((d) => ({ ip: d.ip, port: d.port })),
        ...(dns ? [{ ip: f.address, port: dns, protocol: "udp" as const }] : []),
      ];
    },
  };
}
