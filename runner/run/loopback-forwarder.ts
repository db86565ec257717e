/**
 * The host side of a `localhost:PORT` endpoint. A container cannot reach the host's loopback, so the
 * gate DNATs the agent's 127.0.0.1:PORT to this forwarder, which listens on the airlock bridge's
 * gateway address and connects to the host's 127.0.0.1:PORT. It accepts connections only from the
 * agent containers it serves, so other containers on the machine cannot use it to reach the host.
 * For a broker that records no refusals (MQTT), it hands each connection's bytes to the run's tap
 * (bus/mqtt-tap.ts) as they pass, and closes a connection the tap cannot read.
 */
import { connect, type Socket } from "node:net";
import type { WireTap } from "../bus/kind.js";
import { AgentPort } from "./agent-port.js";

const BUFFER = 1024 * 1024;

export interface ForwarderStats {
  accepted: number;
  rejected: number;
  failed: number;
}

export class LoopbackForwarder {
  readonly target: { host: string; port: number };
  readonly stats: ForwarderStats = { accepted: 0, rejected: 0, failed: 0 };
  private agentPort?: AgentPort;

  private constructor(
    target: { host: string; port: number },
    /** The gateway address: connections to the broker come from it, so no agent looks like a loopback client. */
    private readonly source: string,
    private readonly tap: WireTap | undefined,
  ) {
    this.target = target;
  }

  /** Listen on `address` (the bridge gateway) on a free port. */
  static async listen(
    address: string,
    target: { host: string; port: number },
    tap?: WireTap,
  ): Promise<LoopbackForwarder> {
    const forwarder = new LoopbackForwarder(target, address, tap);
    forwarder.agentPort = await AgentPort.listen(address, (client) => forwarder.handle(client), {
      onStranger: () => forwarder.stats.rejected++,
      // Large buffers: bulk transfers (Kafka fetches, pipelined Redis) move in few big chunks.
      highWaterMark: BUFFER,
    });
    return forwarder;
  }

  get port(): number {
    return this.agentPort!.port;
  }

  /** Accept connections from this container address. */
  allow(ip: string): void {
    this.agentPort!.allow(ip);
  }

  private handle(client: Socket): void {
    this.stats.accepted++;
    const upstream = connect({
      host: this.target.host,
      port: this.target.port,
      localAddress: this.source,
      noDelay: true,
      highWaterMark: BUFFER,
    } as unknown as import("node:net").NetConnectOpts);
    this.agentPort!.track(upstream);
    upstream.on("error", () => {
      this.stats.failed++;
      // The broker refused or went away: the agent sees its connection reset, as it would directly.
      if (!client.destroyed) client.resetAndDestroy();
    });
    client.on("error", () => upstream.destroy());
    if (this.tap) this.read(this.tap, client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Both directions through the tap, before they are passed on; a stream it cannot read is cut. */
  private read(tap: WireTap, client: Socket, upstream: Socket): void {
    const connection = tap.connection();
    const cut = () => {
      client.resetAndDestroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      try {
        connection.fromAgent(chunk);
      } catch {
        cut();
      }
    });
    upstream.on("data", (chunk: Buffer) => {
      try {
        connection.fromBroker(chunk);
      } catch {
        cut();
      }
    });
  }

  async close(): Promise<void> {
    await this.agentPort?.close();
  }
}
