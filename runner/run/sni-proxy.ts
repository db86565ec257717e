/**
 * The egress proxy for HTTPS services by name, pass-through mode: the agent's TLS connection is held
 * until its ClientHello is whole, the name it asks for (SNI) is checked against the services its
 * policy lists, and only then does the runner resolve that name itself, on the host, and connect
 * upstream, replaying the hello — so the name the agent asked for is the name it reaches (fronting
 * by SNI fails), an address the name had a minute ago does not matter (DNS rotation just works),
 * and nothing but a listed name leaves. The TLS session itself stays end to end between the agent
 * and the service: this mode reads nothing after the hello.
 *
 * A refusal is immediate and explained: a TLS alert for a TLS client, an HTTP 403 for plain HTTP
 * on a TLS port, and an entry for the run's denied report. Like the loopback forwarder, it serves
 * only the agent addresses it was told (agent-port.ts); every wait is bounded.
 */
import { lookup } from "node:dns/promises";
import { connect, isIPv4, type NetConnectOpts, type Socket } from "node:net";
import { readClientHello } from "../gate/https/client-hello.js";
import { decideByName, type NameRefusal } from "../gate/https/names.js";
import type { Resolver } from "../gate/plan.js";
import { AgentPort } from "./agent-port.js";

/** How long a client has to send its whole ClientHello. */
export const HELLO_TIMEOUT_MS = 5000;
/** How long the upstream connect may take before the agent is told it failed. */
export const UPSTREAM_TIMEOUT_MS = 10_000;
const BUFFER = 256 * 1024;

/** A service the policy lists by name, on the port this proxy serves. */
export interface NamedService {
  /** A host name, or `*.` and a name under which one label is allowed. */
  host: string;
  /** Terminated at the gate (headers, inspect): handed to the terminator after the name check. */
  terminate?: boolean;
}

/** Where a terminated service's connections go after the name check (https-terminator.ts). */
export interface Terminating<S> {
  handle(client: Socket, hello: Buffer, name: string, service: S): void;
}

export type HttpsRefusal =
  | NameRefusal
  | "not-tls"
  | "plain-http"
  | "malformed"
  | "too-large"
  | "timeout"
  | "upstream"
  | "upstream-certificate"
  | "host-mismatch";

/** One connection the proxy refused: for the run's denied report. */
export interface HttpsDenial {
  /** The name the agent asked for, when it named one. */
  name?: string;
  port: number;
  reason: HttpsRefusal;
  detail: string;
}

export interface SniProxyOptions<S extends NamedService = NamedService> {
  /** The port the agent connected to (the service's port; upstream connects to the same). */
  port: number;
  services: S[];
  /** Takes the connections to services listed with `terminate`. */
  terminator?: Terminating<S>;
  /** How names are resolved on the host (tests pass their own). */
  resolver?: Resolver;
  onDenied?: (denial: HttpsDenial) => void;
  /** Where upstream connections come from (the bridge gateway: no agent looks like a host process). */
  localAddress?: string;
  helloTimeoutMs?: number;
}

const hostResolver: Resolver = async (host) => (await lookup(host, { all: true, family: 4 })).map((a) => a.address);

/** TLS alert descriptions the proxy sends (RFC 8446 §6). */
const ALERT = { accessDenied: 49, unrecognizedName: 112, handshakeFailure: 40, internalError: 80 } as const;

/** A fatal TLS alert record: what a TLS client reports at once, instead of waiting. */
export function tlsAlert(description: number): Buffer {
  return Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]);
}

export class SniProxy<S extends NamedService = NamedService> {
  private agentPort?: AgentPort;

  /**
   * The one name this port passes through, when it serves exactly one service, named exactly and not
   * terminated: its upstream connection is opened as the agent's connection arrives, while the agent
   * sends its hello, so the name check costs no upstream round trip. Nothing is sent upstream before
   * the hello is checked; a hello for any other name closes it unused.
   */
  private readonly soleName: string | undefined;

  private constructor(private readonly options: SniProxyOptions<S>) {
    const s = options.services;
    this.soleName =
      s.length === 1 && !s[0]!.host.startsWith("*.") && !s[0]!.terminate ? s[0]!.host.toLowerCase() : undefined;
  }

  /** Listen on `address` (the bridge gateway, or the address Pods reach) on a free port. */
  static async listen<S extends NamedService>(address: string, options: SniProxyOptions<S>): Promise<SniProxy<S>> {
    const proxy = new SniProxy(options);
    proxy.agentPort = await AgentPort.listen(address, (client) => proxy.handle(client), { highWaterMark: BUFFER });
    return proxy;
  }

  get port(): number {
    return this.agentPort!.port;
  }

  /** Accept connections from this agent address. */
  allow(ip: string): void {
    this.agentPort!.allow(ip);
  }

  /** An agent's connection: its hello read within the time limit, its name decided, then forwarded or refused. */
  private handle(client: Socket): void {
    // An error on the agent's side ends its connection; there is nothing else to tell.
    client.on("error", () => client.destroy());
    const sole = this.soleName;
    let early: Promise<Socket> | undefined = sole ? this.upstream(sole) : undefined;
    // An early connection nobody takes (a refused hello, an agent gone) is closed once it exists.
    const discard = () => {
      early?.then(
        (s) => s.destroy(),
        () => {},
      );
      early = undefined;
    };
    client.once("close", discard);
    let received = Buffer.alloc(0);
    const helloMs = this.options.helloTimeoutMs ?? HELLO_TIMEOUT_MS;
    // Decided once: after a refusal (or the time limit), nothing more the agent sends is read.
    const decided = () => {
      client.off("data", onData);
      client.pause();
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      decided();
      discard();
      this.refuse(client, { reason: "timeout", detail: `no complete ClientHello within ${helloMs} ms` });
    }, helloMs);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const read = readClientHello(received);
      if (read.state === "partial") return;
      decided();
      if (read.state === "invalid") {
        discard();
        this.refuse(client, { reason: read.reason, detail: read.detail });
        return;
      }
      const decision = decideByName(read.hello, this.options.services);
      if ("refuse" in decision) {
        discard();
        this.refuse(client, {
          reason: decision.refuse,
          detail: decision.detail,
          ...(decision.name ? { name: decision.name } : {}),
        });
        return;
      }
      if (decision.allow.terminate && this.options.terminator) {
        discard();
        this.options.terminator.handle(client, received, decision.name, decision.allow);
        return;
      }
      const pending = early && decision.name === sole ? early : this.upstream(decision.name);
      if (pending === early) {
        client.off("close", discard);
        early = undefined;
      } else discard();
      void this.forward(client, decision.name, received, pending);
    };
    client.on("data", onData);
  }

  /** Resolve `name` here and connect to it on the service's port; rejects with what went wrong. */
  private upstream(name: string): Promise<Socket> {
    const port = this.options.port;
    const connected = (async () => {
      let ips: string[];
      try {
        ips = (await (this.options.resolver ?? hostResolver)(name)).filter((ip) => isIPv4(ip));
        if (!ips.length) throw new Error("no IPv4 address");
      } catch (err) {
        throw new Error(`${name} does not resolve: ${(err as Error).message}`);
      }
      const upstream = connect({
        host: ips[0]!,
        port,
        noDelay: true,
        // Large reads: a download moves through in few big chunks.
        highWaterMark: BUFFER,
        ...(this.options.localAddress ? { localAddress: this.options.localAddress } : {}),
        // highWaterMark is a Socket option Node's NetConnectOpts type does not list.
      } as unknown as NetConnectOpts);
      this.agentPort!.track(upstream);
      upstream.setTimeout(UPSTREAM_TIMEOUT_MS, () =>
        upstream.destroy(new Error(`no connection within ${UPSTREAM_TIMEOUT_MS / 1000} s`)),
      );
      await new Promise<void>((resolve, reject) => {
        upstream.once("connect", resolve);
        upstream.once("error", (err) => reject(new Error(`${name}:${port}: ${err.message}`)));
      });
      upstream.setTimeout(0);
      return upstream;
    })();
    // Awaited by forward() or closed by discard(); until then a rejection must not count as unhandled.
    connected.catch(() => {});
    return connected;
  }

  /** Replay what the agent sent to the upstream connection, and join the two. */
  private async forward(client: Socket, name: string, hello: Buffer, pending: Promise<Socket>): Promise<void> {
    let upstream: Socket;
    try {
      upstream = await pending;
    } catch (err) {
      this.refuse(client, { name, reason: "upstream", detail: (err as Error).message });
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    // Once joined, an upstream error ends the agent's connection (the TLS session tells it the rest).
    upstream.on("error", () => client.destroy());
    upstream.write(hello);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    client.on("close", () => upstream.destroy());
    upstream.on("end", () => client.end());
  }

  /** Tell the agent (a TLS alert, or a 403 for plain HTTP), record the denial, and close: the answer is sent, the connection does not stay. */
  private refuse(client: Socket, denial: Omit<HttpsDenial, "port">): void {
    if (client.destroyed) return;
    this.options.onDenied?.({ ...denial, port: this.options.port });
    // The answer gets a moment to leave; a client that does not close its side is cut then.
    setTimeout(() => client.destroy(), 1000).unref();
    if (denial.reason === "plain-http") {
      const body = `airlock: plain HTTP on port ${this.options.port} is refused; this port carries HTTPS to the services the policy lists\n`;
      client.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    const description =
      denial.reason === "not-listed" || denial.reason === "no-sni" || denial.reason === "ip-literal"
        ? ALERT.unrecognizedName
        : denial.reason === "ech"
          ? ALERT.accessDenied
          : denial.reason === "upstream"
            ? ALERT.internalError
            : ALERT.handshakeFailure;
    client.end(tlsAlert(description));
  }

  /** Stop accepting and end every connection. Idempotent. */
  async close(): Promise<void> {
    await this.agentPort?.close();
  }
}
