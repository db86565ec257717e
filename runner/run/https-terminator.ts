/**
 * The egress proxy's terminating mode, for the services a policy lists with `headers` or `inspect`:
 * after the name check (sni-proxy.ts), the agent's TLS session ends here, with a certificate for the
 * name signed by the runner's CA (egress-ca.ts), over HTTP/1.1 or HTTP/2 as the client offers
 * (ALPN). Each request must name the same host as the TLS session (Host / :authority equal to the
 * SNI name, its port the service's): classic domain fronting fails with a 421. The request then goes
 * to the service over a TLS connection of the proxy's own, to the address the host resolves, with
 * the service's real certificate verified, and the policy's headers added — their values, secrets of
 * the caller's, exist only here. Bodies stream both ways with backpressure, never buffered whole,
 * so a model's server-sent events arrive as they are sent.
 */
import { request as httpsRequest, Agent, type RequestOptions } from "node:https";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { isIPv4, type Socket } from "node:net";
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from "node:tls";
import type { Resolver } from "../gate/plan.js";
import { nameMatches } from "../gate/https/names.js";
import { fillHeader, type HttpsService } from "../policy/https-service.js";
import type { Authority } from "./egress-ca.js";
import type { HttpsDenial } from "./sni-proxy.js";

/** Headers of one hop only: never passed on (RFC 9110 §7.6.1), plus HTTP/2's pseudo-headers. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
  "http2-settings",
]);
const UPSTREAM_TIMEOUT_MS = 10_000;

export interface TerminatorOptions {
  port: number;
  /** The services of this port (those with `terminate` come here). */
  services: HttpsService[];
  authority: Authority;
  /** The values of the variables the policy's headers name (the caller's; never the agent's). */
  secrets: Record<string, string>;
  resolver: Resolver;
  onDenied: (denial: HttpsDenial) => void;
  /** Where upstream connections come from. */
  localAddress?: string;
  /** CAs trusted for the services' certificates, instead of Node's (with NODE_EXTRA_CA_CERTS). */
  upstreamCa?: string;
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

export class HttpsTerminator {
  private readonly server;
  private readonly agent: Agent;
  constructor(private readonly options: TerminatorOptions) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 256,
      ...(options.upstreamCa ? { ca: options.upstreamCa } : {}),
    });
    this.server = createSecureServer({
      allowHTTP1: true,
      ALPNProtocols: ["h2", "http/1.1"],
      SNICallback: (name, cb) => cb(null, options.authority.contextFor(name.toLowerCase())),
    });
    this.server.on("request", (req: AnyRequest, res: AnyResponse) => void this.request(req, res));
    // A client that breaks off its handshake or session is not the proxy's failure.
    this.server.on("tlsClientError", () => {});
    this.server.on("sessionError", () => {});
  }

  /** An agent's connection whose hello named a listed, terminated service: `hello` is what was read of it. */
  handle(client: Socket, hello: Buffer): void {
    // The hello goes back into the socket's own buffer; TLS reads it from there, then from the
    // socket's handle directly (no stream in JavaScript between the kernel and OpenSSL).
    client.unshift(hello);
    this.server.emit("connection", client);
  }

  /** The name the session's hello asked for (checked before it got here), and its service. */
  private sessionOf(req: AnyRequest): { name: string; service: HttpsService } | undefined {
    const socket = ("stream" in req ? req.stream.session?.socket : req.socket) as TLSSocket | undefined;
    const name = typeof socket?.servername === "string" ? socket.servername.toLowerCase() : undefined;
    const service = name ? this.options.services.find((s) => s.terminate && nameMatches(name, s.host)) : undefined;
    return name && service ? { name, service } : undefined;
  }

  private async request(req: AnyRequest, res: AnyResponse): Promise<void> {
    const session = this.sessionOf(req);
    if (!session) return refuseRequest(res, 500, "airlock: this connection was not let through by name");
    const { name, service } = session;
    const authority = String(("authority" in req && req.authority) || req.headers.host || "").toLowerCase();
    if (!sameHost(authority, name, service.port)) {
      this.options.onDenied({
        name,
        port: service.port,
        reason: "host-mismatch",
        detail: `a request inside the TLS session for ${name} asked for ${authority || "no host"}`,
      });
      return refuseRequest(
        res,
        421,
        `airlock: this connection is for ${name}; a request for ${authority || "no host"} must open its own connection to that name\n`,
      );
    }
    let ip: string;
    try {
      const ips = (await this.options.resolver(name)).filter((a) => isIPv4(a));
      if (!ips.length) throw new Error("no IPv4 address");
      ip = ips[0]!;
    } catch (err) {
      this.options.onDenied({
        name,
        port: service.port,
        reason: "upstream",
        detail: `${name} does not resolve: ${(err as Error).message}`,
      });
      return refuseRequest(res, 502, `airlock: ${name} does not resolve on the host\n`);
    }
    const headers: Record<string, string | string[]> = {};
    for (const [key, value] of Object.entries(req.headers as IncomingHttpHeaders)) {
      if (value === undefined || key.startsWith(":") || HOP_BY_HOP.has(key)) continue;
      headers[key] = value;
    }
    headers.host = service.port === 443 ? name : `${name}:${service.port}`;
    for (const h of service.headers) headers[h.name.toLowerCase()] = fillHeader(h.value, this.options.secrets).value;
    const options: RequestOptions = {
      host: ip,
      port: service.port,
      servername: name,
      method: req.method,
      path: req.url,
      headers,
      agent: this.agent,
      timeout: UPSTREAM_TIMEOUT_MS,
      // The certificate must be valid for the name (not the address connected to).
      checkServerIdentity: (_host, cert) => tlsCheck(name, cert),
      ...(this.options.localAddress ? { localAddress: this.options.localAddress } : {}),
    };
    const upstream = httpsRequest(options, (answer) => {
      upstream.setTimeout(0);
      const out: Record<string, string | string[]> = {};
      for (const [key, value] of Object.entries(answer.headers)) {
        if (value === undefined || HOP_BY_HOP.has(key)) continue;
        out[key] = value;
      }
      (res as ServerResponse).writeHead(answer.statusCode ?? 502, out);
      // Each chunk goes on as it comes (server-sent events are not held back).
      (res as ServerResponse).flushHeaders?.();
      answer.pipe(res as ServerResponse);
      answer.on("error", () => res.destroy());
    });
    upstream.on("timeout", () => upstream.destroy(new Error(`no answer within ${UPSTREAM_TIMEOUT_MS / 1000} s`)));
    upstream.on("error", (err: NodeJS.ErrnoException) => {
      const certificate = /CERT|certificate|self.signed|UNABLE_TO/i.test(`${err.code} ${err.message}`);
      this.options.onDenied({
        name,
        port: service.port,
        reason: certificate ? "upstream-certificate" : "upstream",
        detail: `${name}:${service.port}: ${err.message}`,
      });
      if (res.headersSent) return res.destroy();
      refuseRequest(
        res,
        502,
        certificate
          ? `airlock: ${name} presented a certificate that does not verify (${err.code ?? err.message}); the request was not sent\n`
          : `airlock: ${name}:${service.port} could not be reached from the host (${err.code ?? err.message})\n`,
      );
    });
    req.pipe(upstream);
    req.on("error", () => upstream.destroy());
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.close();
  }
}

/** Whether a request's Host / :authority is the session's name (and its port the service's). */
export function sameHost(authority: string, name: string, port: number): boolean {
  const m = /^([^:]+)(?::(\d+))?$/.exec(authority);
  if (!m) return false;
  const host = m[1]!.replace(/\.$/, "");
  const asked = m[2] === undefined ? 443 : Number(m[2]);
  return host === name && asked === port;
}

function tlsCheck(name: string, cert: PeerCertificate): Error | undefined {
  // Node's own check, on the name.
  return checkServerIdentity(name, cert);
}

function refuseRequest(res: AnyResponse, status: number, body: string): void {
  if (res.headersSent) return void res.destroy();
  (res as ServerResponse).writeHead(status, {
    "content-type": "text/plain",
    "content-length": Buffer.byteLength(body),
  });
  (res as ServerResponse).end(body);
}
