/**
 * The DNS server of a run with HTTPS services by name: a UDP socket on the address the agent's
 * namespace reaches (its resolv.conf's 127.0.0.1:53 is DNATed here), answering from the policy's
 * list alone (gate/https/dns-answer.ts) and never asking anyone else. Only the agent addresses it
 * was told get an answer; anything else is dropped unanswered.
 */
import { createSocket, type Socket } from "node:dgram";
import { answerDnsQuery } from "../gate/https/dns-answer.js";

export class DnsAnswerer {
  private readonly allowed = new Set<string>();
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    listed: { host: string }[],
    /** What a listed name resolves to inside the sandbox. */
    address: string,
    onRefused: (name: string) => void,
  ) {
    socket.on("message", (message, peer) => {
      if (this.closed || !this.allowed.has(peer.address)) return;
      const outcome = answerDnsQuery(message, listed, address);
      if (outcome.refused && outcome.question) onRefused(outcome.question.name);
      // A send that fails (the agent is gone) has no one left to tell.
      if (outcome.reply) socket.send(outcome.reply, peer.port, peer.address, () => {});
    });
    // A datagram the kernel could not deliver (ICMP back from a closed client port) is not the server's failure.
    socket.on("error", () => {});
  }

  static async listen(
    address: string,
    options: { listed: { host: string }[]; answer: string; onRefused: (name: string) => void },
  ): Promise<DnsAnswerer> {
    const socket = createSocket({ type: "udp4", reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ address, port: 0, exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return new DnsAnswerer(socket, options.listed, options.answer, options.onRefused);
  }

  get port(): number {
    return this.socket.address().port;
  }

  allow(ip: string): void {
    this.allowed.add(ip);
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
