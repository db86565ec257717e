/**
 * iptables rules for one agent's network namespace, in iptables-restore format.
 *
 * Default deny. Allowed: loopback inside the namespace; replies to connections the agent opened;
 * TCP to each allowed destination. A loopback endpoint (localhost:PORT) is DNATed from the agent's
 * own 127.0.0.1:PORT to the runner's forwarder on the bridge gateway, which connects to the host's
 * loopback; an HTTPS port of services listed by name the same way, to the egress proxy, and then
 * DNS (UDP 53 on the agent's 127.0.0.1, its resolv.conf's nameserver) to the proxy's DNS answerer,
 * which answers listed names only. Every other TCP connection is refused with a reset (fails fast); every other packet
 * (UDP, ICMP, ...) is rejected before it leaves. IPv6 is dropped entirely.
 */
import type { DirectRoute } from "./plan.js";
import { DENY_TABLES } from "./protocol.js";

/** The rules of one agent's namespace, in iptables-restore format: what the runner sends a gate, and compares with what the kernel holds. */
export interface RuleSet {
  v4: string;
  v6: string;
}

export interface ForwardedPort {
  /** Port the agent uses on 127.0.0.1. */
  port: number;
  /** Forwarder listening on gateway:forwarderPort. */
  forwarderPort: number;
}

export interface RuleInput {
  gateway: string;
  forwarded: ForwardedPort[];
  direct: Pick<DirectRoute, "ip" | "port">[];
  /** The gateway UDP port of the DNS answerer for HTTPS names (none: no DNS at all). */
  dnsPort?: number;
}

/**
 * Denied-connection accounting: rules with no target only count, here in hashlimit tables keyed by
 * destination, which the runner reads from /proc/net/ipt_hashlimit/ after the run. At 1/hour, each
 * packet costs one credit and almost none come back, so credits used = attempts, exactly, up to the burst.
 */
export { DENY_TABLES } from "./protocol.js";
export const DENY_COUNT_CAP = 30;

function countInto(table: string, mode: "dstip,dstport" | "dstip"): string {
  return `-m hashlimit --hashlimit-upto 1/hour --hashlimit-burst ${DENY_COUNT_CAP} --hashlimit-mode ${mode} --hashlimit-name ${table} --hashlimit-htable-expire 604800000`;
}

export function ipv4Rules(input: RuleInput): string {
  const nat = [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ...input.forwarded.map(
      (f) =>
        `-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport ${f.port} -j DNAT --to-destination ${input.gateway}:${f.forwarderPort}`,
    ),
    ...(input.dnsPort
      ? [
          `-A OUTPUT -d 127.0.0.1/32 -p udp -m udp --dport 53 -j DNAT --to-destination ${input.gateway}:${input.dnsPort}`,
        ]
      : []),
    // DNATed packets still carry 127.0.0.1 as their source; give them the container's address.
    ...(input.forwarded.length || input.dnsPort ? ["-A POSTROUTING -s 127.0.0.0/8 ! -o lo -j MASQUERADE"] : []),
    "COMMIT",
  ];
  const filter = [
    "*filter",
    ":INPUT DROP [0:0]",
    ":FORWARD DROP [0:0]",
    ":OUTPUT DROP [0:0]",
    "-A INPUT -i lo -j ACCEPT",
    "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
    // Docker's embedded DNS answers on 127.0.0.11; it must never be reachable.
    "-A OUTPUT -d 127.0.0.11/32 -j REJECT --reject-with icmp-port-unreachable",
    // Loopback stays open inside the sandbox; connections to localhost ports the policy does not forward are counted.
    `-A OUTPUT -o lo -d 127.0.0.0/8 -p tcp -m tcp --tcp-flags SYN,ACK,RST SYN ${countInto(DENY_TABLES.loopback, "dstip,dstport")}`,
    "-A OUTPUT -o lo -j ACCEPT",
    "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
    // Only what was DNATed from the agent's own localhost:PORT: a direct connection to the gateway is refused.
    ...input.forwarded.map(
      (f) =>
        `-A OUTPUT -d ${input.gateway}/32 -p tcp -m tcp --dport ${f.forwarderPort} -m conntrack --ctstate NEW --ctorigdst 127.0.0.1/32 --ctorigdstport ${f.port} -j ACCEPT`,
    ),
    ...(input.dnsPort
      ? [
          `-A OUTPUT -d ${input.gateway}/32 -p udp -m udp --dport ${input.dnsPort} -m conntrack --ctstate NEW --ctorigdst 127.0.0.1/32 --ctorigdstport 53 -j ACCEPT`,
        ]
      : []),
    ...input.direct.map(
      (d) => `-A OUTPUT -d ${d.ip}/32 -p tcp -m tcp --dport ${d.port} -m conntrack --ctstate NEW -j ACCEPT`,
    ),
    `-A OUTPUT -p tcp ${countInto(DENY_TABLES.tcp, "dstip,dstport")}`,
    "-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset",
    `-A OUTPUT -p udp ${countInto(DENY_TABLES.udp, "dstip,dstport")}`,
    `-A OUTPUT ${countInto(DENY_TABLES.other, "dstip")}`,
    "-A OUTPUT -j REJECT --reject-with icmp-port-unreachable",
    "COMMIT",
  ];
  return `${[...nat, ...filter].join("\n")}\n`;
}

export function ipv6Rules(): string {
  return [
    "*filter",
    ":INPUT DROP [0:0]",
    ":FORWARD DROP [0:0]",
    ":OUTPUT DROP [0:0]",
    "-A INPUT -i lo -j ACCEPT",
    "-A OUTPUT -o lo -j ACCEPT",
    "-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset",
    "-A OUTPUT -j REJECT --reject-with icmp6-adm-prohibited",
    "COMMIT",
    "",
  ].join("\n");
}
