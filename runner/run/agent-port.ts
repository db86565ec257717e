/**
 * A port on the host that only the agents a run names may use: what the loopback forwarder and the
 * HTTPS egress proxy have in common. It listens on the address agents reach (the airlock bridge's
 * gateway, or the node's address for Pods) on a free port, resets a connection from any address it
 * was not told to serve (other containers on the machine cannot use it), and ends every connection
 * it handed out when it closes.
 */
import { createServer, type Server, type Socket } from "node:net";

export class AgentPort {
  private readonly server: Server;
  private readonly allowed = new Set<string>();
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(onAgent: (client: Socket) => void, onStranger: () => void, highWaterMark: number) {
    this.server = createServer({ noDelay: true, highWaterMark }, (client) => {
      const from = (client.remoteAddress ?? "").replace(/^::ffff:/, "");
      if (this.closed || !this.allowed.has(from)) {
        onStranger();
        client.resetAndDestroy();
        return;
      }
      this.track(client);
      onAgent(client);
    });
  }

  /** Listen on `address` on a free port; `onAgent` gets each connection from an allowed agent. */
  static async listen(
    address: string,
    onAgent: (client: Socket) => void,
    options: { onStranger?: () => void; highWaterMark?: number } = {},
  ): Promise<AgentPort> {
    const port = new AgentPort(onAgent, options.onStranger ?? (() => {}), options.highWaterMark ?? 64 * 1024);
    await new Promise<void>((resolve, reject) => {
      port.server.once("error", reject);
      port.server.listen({ host: address, port: 0, exclusive: true }, () => {
        port.server.off("error", reject);
        resolve();
      });
    });
    return port;
  }

  get port(): number {
    const addr = this.server.address();
    if (!addr || typeof addr === "string") throw new Error("the port is not listening");
    return addr.port;
  }

  /** Accept connections from this agent address. */
  allow(ip: string): void {
    this.allowed.add(ip);
  }

  /** A connection that ends with this port (an upstream one opened for an agent's). */
  track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
  }

  /** Stop accepting and end every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
