/**
 * A test agent that really attempts each connection it is given (in PROBES) and reports what
 * happened. The tests decide which attempts must succeed and which must fail.
 */
import { connect } from "node:net";
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { defineAgent } from "airlock/agent";

type Probe =
  | { id: string; kind: "tcp"; host: string; port: number; send?: string }
  | { id: string; kind: "udp"; host: string; port: number }
  | { id: string; kind: "dns-lookup"; name: string }
  | { id: string; kind: "dns-query"; host: string; port: number };

interface Outcome {
  outcome: string;
  ms: number;
  reply?: string;
}

function tcp(p: Extract<Probe, { kind: "tcp" }>): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const done = (outcome: string, reply?: string) => {
      socket.destroy();
      resolve({ outcome, ms: Date.now() - started, ...(reply !== undefined ? { reply } : {}) });
    };
    const socket = connect({ host: p.host, port: p.port });
    socket.setTimeout(5000, () => done("TIMEOUT"));
    socket.once("connect", () => {
      if (!p.send) return done("connected");
      socket.write(p.send);
      socket.once("data", (d) => done("connected", d.toString().trim()));
    });
    socket.once("error", (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

function udp(host: string, port: number, payload: Buffer): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
    const done = (outcome: string) => {
      socket.close();
      resolve({ outcome, ms: Date.now() - started });
    };
    socket.on("error", (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.on("message", () => done("answered"));
    socket.send(payload, port, host, (err) => {
      if (err) return done((err as NodeJS.ErrnoException).code ?? err.message);
      setTimeout(() => done("sent"), 500);
    });
  });
}

/** A DNS query for example.com, type A. */
function dnsQuery(): Buffer {
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
  const name = Buffer.concat([
    Buffer.from([7]),
    Buffer.from("example"),
    Buffer.from([3]),
    Buffer.from("com"),
    Buffer.from([0]),
  ]);
  return Buffer.concat([header, name, Buffer.from([0x00, 0x01, 0x00, 0x01])]);
}

async function run(p: Probe): Promise<Outcome> {
  switch (p.kind) {
    case "tcp":
      return tcp(p);
    case "udp":
      return udp(p.host, p.port, Buffer.from("DECOY-PROBE"));
    case "dns-query":
      return udp(p.host, p.port, dnsQuery());
    case "dns-lookup": {
      const started = Date.now();
      try {
        const a = await lookup(p.name);
        return { outcome: `resolved ${a.address}`, ms: Date.now() - started };
      } catch (err) {
        return { outcome: (err as NodeJS.ErrnoException).code ?? "error", ms: Date.now() - started };
      }
    }
  }
}

export default defineAgent(async (ctx) => {
  const probes = JSON.parse(ctx.env.PROBES ?? "[]") as Probe[];
  const results: Record<string, Outcome> = {};
  for (const p of probes) results[p.id] = await run(p);
  const status = readFileSync("/proc/self/status", "utf8");
  const caps = Object.fromEntries(
    status
      .split("\n")
      .filter((l) => /^Cap(Eff|Prm|Bnd|Amb|Inh):/.test(l))
      .map((l) => l.split(/:\s+/)),
  );
  const env = Object.fromEntries(
    Object.entries(ctx.env).filter(([k]) => !["PATH", "NODE_VERSION", "HOSTNAME", "TERM"].includes(k)),
  );
  await ctx.output.writeJson("probes.json", results);
  return { results, caps, uid: process.getuid?.(), env };
});
