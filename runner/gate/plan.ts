/**
 * What the gate must let through, worked out on the host before the agent starts: DNS names are
 * resolved here (a DNS query never leaves the container), loopback endpoints are routed to a
 * forwarder on the host, everything else is a direct IPv4 destination. HTTPS services listed by
 * name are none of these: inside the sandbox their names are the agent's own 127.0.0.1, and each
 * of their ports is routed, like a loopback endpoint, to the gate's egress proxy, which decides
 * every connection by the name it asks for (run/https-egress.ts).
 */
import { lookup } from "node:dns/promises";
import { EndpointResolutionError } from "../errors.js";
import { isIPv4, type Endpoint } from "../policy/endpoint.js";
import type { HttpsService } from "../policy/https-service.js";

export interface LoopbackRoute {
  /** The port the agent connects to on its own 127.0.0.1 (= the policy's port). */
  port: number;
  /** Where the host forwarder connects: the host's loopback address and port. */
  target: { host: string; port: number };
  endpoint: Endpoint;
}

export interface DirectRoute {
  ip: string;
  port: number;
  endpoint: Endpoint;
}

/** One port of the HTTPS services listed by name: the agent's 127.0.0.1:port goes to the egress proxy. */
export interface HttpsRoute {
  port: number;
  services: HttpsService[];
}

export interface GatePlan {
  loopback: LoopbackRoute[];
  direct: DirectRoute[];
  /** HTTPS services by name, one route per port (none: no egress proxy, no DNS answers). */
  https: HttpsRoute[];
  /** Names the agent may use, and the addresses they resolve to inside the container. */
  hosts: { name: string; ip: string }[];
}

export type Resolver = (host: string) => Promise<string[]>;

export const hostResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, family: 4 })).map((a) => a.address);

export async function planGate(
  network: { allowedEndpoints: Endpoint[]; https: HttpsService[] },
  policyFile: string,
  resolver: Resolver = hostResolver,
): Promise<GatePlan> {
  const endpoints = network.allowedEndpoints;
  const plan: GatePlan = { loopback: [], direct: [], https: httpsRoutes(network.https), hosts: [] };
  const loopbackPorts = new Map<number, LoopbackRoute>();
  const addLoopback = (endpoint: Endpoint, hostIp: string) => {
    if (loopbackPorts.has(endpoint.port)) return;
    const route = { port: endpoint.port, target: { host: hostIp, port: endpoint.port }, endpoint };
    loopbackPorts.set(endpoint.port, route);
    plan.loopback.push(route);
  };
  for (const endpoint of endpoints) {
    if (endpoint.kind === "loopback") {
      addLoopback(endpoint, endpoint.host === "localhost" ? "127.0.0.1" : endpoint.host);
      continue;
    }
    if (endpoint.kind === "ipv4") {
      plan.direct.push({ ip: endpoint.host, port: endpoint.port, endpoint });
      continue;
    }
    let ips: string[];
    try {
      ips = (await resolver(endpoint.host)).filter(isIPv4);
      if (ips.length === 0) throw new Error("no IPv4 address");
    } catch (err) {
      throw new EndpointResolutionError(endpoint.host, err, policyFile);
    }
    const loop = ips.find((ip) => ip.startsWith("127."));
    if (loop) {
      addLoopback(endpoint, loop);
      plan.hosts.push({ name: endpoint.host, ip: "127.0.0.1" });
      continue;
    }
    for (const ip of ips) plan.direct.push({ ip, port: endpoint.port, endpoint });
    plan.hosts.push({ name: endpoint.host, ip: ips[0]! });
  }
  const seen = new Set<string>();
  plan.direct = plan.direct.filter((d) => !seen.has(`${d.ip}:${d.port}`) && seen.add(`${d.ip}:${d.port}`));
  // Exact names are in /etc/hosts (a wildcard's names are answered by the gate's DNS answerer).
  const named = new Set(network.https.filter((s) => !s.wildcard).map((s) => s.host));
  for (const name of named) plan.hosts.push({ name, ip: "127.0.0.1" });
  return plan;
}

/** The services grouped by port, in the order the policy lists them. */
function httpsRoutes(services: HttpsService[]): HttpsRoute[] {
  const byPort = new Map<number, HttpsService[]>();
  for (const s of services) byPort.set(s.port, [...(byPort.get(s.port) ?? []), s]);
  return [...byPort].map(([port, list]) => ({ port, services: list }));
}

/** /etc/hosts for the agent: localhost, plus the policy's names pinned to the addresses resolved on the host. */
export function hostsFile(plan: Pick<GatePlan, "hosts">): string {
  const lines = ["127.0.0.1\tlocalhost", "# names from the policy, resolved by the airlock runner"];
  for (const h of plan.hosts) lines.push(`${h.ip}\t${h.name}`);
  return `${lines.join("\n")}\n`;
}

/** resolv.conf for the agent: no nameserver is reachable, so lookups fail at once instead of leaking. */
export const RESOLV_CONF =
  "# airlock: DNS is disabled inside the sandbox; names in the policy are in /etc/hosts\noptions timeout:1 attempts:1\nnameserver 127.0.0.1\n";
