/**
 * The host side of a `localhost:PORT` endpoint. A container cannot reach the host's loopback, so the
 * gate DNATs the agent's 127.0.0.1:PORT to this forwarder, which listens on the airlock bridge's
 * gateway address and connects to the host's 127.0.0.1:PORT. It accepts connections only from the
 * agent containers it serves, so other containers on the machine cannot use it to reach the host.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

const BUFFER = 1024 * 1024;

export interface ForwarderStats {
  accepted: number;
  rejected: number;
  failed: number;
}

export class LoopbackForwarder {
  readonly target: { host: string; port: number };
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly allowed = new Set<string>();
  readonly stats: ForwarderStats = { accepted: 0, rejected: 0, failed: 0 };
  private closed = false;

  private constructor(
    target: { host: string; port: number },
    /** The gateway address: connections to the broker come from it, so no agent looks like a loopback client. */
    private readonly source: string,
  ) {
    this.target = target;
    // Large buffers: bulk transfers (Kafka fetches, pipelined Redis) move in few big chunks.
    this.server = createServer({ noDelay: true, highWaterMark: BUFFER }, (client) => this.handle(client));
  }

  /** Listen on `address` (the bridge gateway) on a free port. */
  static async listen(address: string, target: { host: string; port: number }): Promise<LoopbackForwarder> {
    const forwarder = new LoopbackForwarder(target, address);
    await new Promise<void>((resolve, reject) => {
      forwarder.server.once("error", reject);
      forwarder.server.listen({ host: address, port: 0, exclusive: true }, () => {
        forwarder.server.off("error", reject);
        resolve();
      });
    });
    return forwarder;
  }

  get port(): number {
    const addr = this.server.address();
    if (!addr || typeof addr === "string") throw new Error("forwarder is not listening");
    return addr.port;
  }

  /** Accept connections from this container address. */
  allow(ip: string): void {
    this.allowed.add(ip);
  }

  private handle(client: Socket): void {
    const from = (client.remoteAddress ?? "").replace(/^::ffff:/, "");
    if (this.closed || !this.allowed.has(from)) {
      this.stats.rejected++;
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted++;
    const upstream = connect({
      host: this.target.host,
      port: this.target.port,
      localAddress: this.source,
      noDelay: true,
      highWaterMark: BUFFER,
    } as unknown as import("node:net").NetConnectOpts);
    this.sockets.add(client).add(upstream);
    const done = () => {
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("close", done);
    upstream.on("close", done);
    upstream.on("error", () => {
      this.stats.failed++;
      // The broker refused or went away: the agent sees its connection reset, as it would directly.
      if (!client.destroyed) client.resetAndDestroy();
    });
    client.on("error", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
