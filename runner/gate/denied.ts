/**
 * The denied-connection report: what the gate refused, by destination and protocol, read from the
 * kernel's hashlimit tables in the agent's network namespace (see rules.ts): by a root runner from
 * the host itself, else as the gate prints them, so an agent cannot forge or hide entries.
 */
import { DENY_COUNT_CAP, DENY_TABLES } from "./rules.js";

export interface DeniedConnection {
  /** ip:port, or ip for protocols without ports; name:port for HTTPS by name, the name for DNS. */
  destination: string;
  /** tcp, udp, other: the kernel's tables; https, dns: the gate's egress proxy for HTTPS by name. */
  protocol: "tcp" | "udp" | "other" | "https" | "dns";
  /** Attempts; `countAtLeast` is true when it reached the counter's cap. */
  count: number;
  countAtLeast?: boolean;
  /** A localhost port inside the sandbox that the policy does not forward to the host. */
  loopback?: boolean;
  /** Why the egress proxy refused it (not-listed, no-sni, ip-literal, ech, plain-http, ...). */
  reason?: string;
  /** What to change in the policy, or why no policy line can allow it. */
  fix?: string;
}

/**
 * Ports the kernel hands out for outgoing connections (ip_local_port_range's default). A loopback
 * connection to one of them is to a listener inside the sandbox that the agent opened itself (pika and
 * others emulate socketpair() over 127.0.0.1), not an attempt to reach a service on the host.
 */
const EPHEMERAL_PORTS = { from: 32768, to: 60999 };

function isEphemeral(destination: string): boolean {
  const port = Number(destination.slice(destination.lastIndexOf(":") + 1));
  return port >= EPHEMERAL_PORTS.from && port <= EPHEMERAL_PORTS.to;
}

/** Parse /proc/net/ipt_hashlimit/<table>: "expires src:port->dst:port credit credit_cap cost". */
export function parseHashlimit(
  text: string,
  protocol: DeniedConnection["protocol"],
  loopback = false,
): DeniedConnection[] {
  const out: DeniedConnection[] = [];
  for (const line of text.split("\n")) {
    const m = /^\d+ \S+->(\S+) (\d+) (\d+) (\d+)$/.exec(line.trim());
    if (!m) continue;
    const [, dst, credit, cap, cost] = m;
    const used = (BigInt(cap!) - BigInt(credit!)) / BigInt(cost!);
    const count = Math.max(1, Number(used));
    const destination = dst!.endsWith(":0") && protocol === "other" ? dst!.slice(0, -2) : dst!;
    if (loopback && isEphemeral(destination)) continue;
    out.push({
      destination,
      protocol,
      count,
      ...(count >= DENY_COUNT_CAP ? { countAtLeast: true } : {}),
      ...(loopback ? { loopback: true } : {}),
    });
  }
  return out;
}

const TABLES: [string, DeniedConnection["protocol"], boolean][] = [
  [DENY_TABLES.tcp, "tcp", false],
  [DENY_TABLES.udp, "udp", false],
  [DENY_TABLES.other, "other", false],
  [DENY_TABLES.loopback, "tcp", true],
];

/** The gate's report (sections "== <table>" followed by the table's lines) as denied connections. */
export function parseDeniedReport(text: string): DeniedConnection[] {
  const denied: DeniedConnection[] = [];
  for (const section of text.split(/^== /m).slice(1)) {
    const [name, ...rest] = section.split("\n");
    const table = TABLES.find(([t]) => t === name?.trim());
    if (table) denied.push(...parseHashlimit(rest.join("\n"), table[1], table[2]));
  }
  return denied.sort((a, b) => b.count - a.count || a.destination.localeCompare(b.destination));
}
