/**
 * The denied-connection report: what the gate refused, by destination and protocol, read from the
 * kernel's hashlimit tables in the agent's network namespace (see rules.ts). Read through the gate
 * container, not from the agent, so an agent cannot forge or hide entries.
 */
import type Docker from "dockerode";
import { PassThrough } from "node:stream";
import { DENY_COUNT_CAP, DENY_TABLES } from "./rules.js";

export interface DeniedConnection {
  /** ip:port, or ip for protocols without ports. */
  destination: string;
  protocol: "tcp" | "udp" | "other";
  /** Attempts; `countAtLeast` is true when it reached the counter's cap. */
  count: number;
  countAtLeast?: boolean;
  /** A localhost port inside the sandbox that the policy does not forward to the host. */
  loopback?: boolean;
}

/** Parse /proc/net/ipt_hashlimit/<table>: "expires src:port->dst:port credit credit_cap cost". */
export function parseHashlimit(text: string, protocol: DeniedConnection["protocol"], loopback = false): DeniedConnection[] {
  const out: DeniedConnection[] = [];
  for (const line of text.split("\n")) {
    const m = /^\d+ \S+->(\S+) (\d+) (\d+) (\d+)$/.exec(line.trim());
    if (!m) continue;
    const [, dst, credit, cap, cost] = m;
    const used = (BigInt(cap!) - BigInt(credit!)) / BigInt(cost!);
    const count = Math.max(1, Number(used));
    const destination = dst!.endsWith(":0") && protocol === "other" ? dst!.slice(0, -2) : dst!;
    out.push({ destination, protocol, count, ...(count >= DENY_COUNT_CAP ? { countAtLeast: true } : {}), ...(loopback ? { loopback: true } : {}) });
  }
  return out;
}

const TABLES: [string, DeniedConnection["protocol"], boolean][] = [
  [DENY_TABLES.tcp, "tcp", false],
  [DENY_TABLES.udp, "udp", false],
  [DENY_TABLES.other, "other", false],
  [DENY_TABLES.loopback, "tcp", true],
];

export async function readDenied(docker: Docker, gate: Docker.Container): Promise<DeniedConnection[]> {
  const script = TABLES.map(([t]) => `echo "== ${t}"; cat /proc/net/ipt_hashlimit/${t} 2>/dev/null`).join("; ");
  const exec = await gate.exec({ Cmd: ["sh", "-c", script], AttachStdout: true, AttachStderr: true, User: "0" });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  let text = "";
  out.on("data", (d: Buffer) => (text += d.toString()));
  docker.modem.demuxStream(stream, out, new PassThrough());
  await new Promise<void>((resolve) => {
    stream.on("end", resolve);
    stream.on("close", resolve);
    stream.on("error", () => resolve());
  });
  const sections = text.split(/^== /m).slice(1);
  const denied: DeniedConnection[] = [];
  for (const section of sections) {
    const [name, ...rest] = section.split("\n");
    const table = TABLES.find(([t]) => t === name?.trim());
    if (table) denied.push(...parseHashlimit(rest.join("\n"), table[1], table[2]));
  }
  return denied.sort((a, b) => b.count - a.count || a.destination.localeCompare(b.destination));
}
