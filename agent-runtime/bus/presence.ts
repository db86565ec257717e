/**
 * Presence over NATS: a small registry of who is online. Each agent that starts it sends a heartbeat
 * on presence.<ns>.<agent> (with what it wants the others to know: its public keys, say) and hears
 * everyone else's; an agent not heard for three intervals is evicted, one that says goodbye at once.
 *
 *   bus: { nats: { publish: ["presence.{run}.{agent}"], subscribe: ["presence.{run}.*"] } }
 */
import type { NatsConnection, Subscription } from "nats";
import { busAgent, runNamespace, token } from "./names.js";

export interface Member<M = unknown> {
  agent: string;
  lastSeen: number;
  meta?: M;
}

export interface Presence<M> {
  /** Start sending heartbeats and listening to the others'. */
  start(meta?: M): Promise<void>;
  /** The agents heard within three intervals (not this one). */
  online(): Member<M>[];
  /** Until `agents` (at least that many, or those names) are online. */
  waitFor(agents: number | string[], options?: { timeoutMs?: number }): Promise<Member<M>[]>;
  /** Say goodbye and stop. */
  stop(): Promise<void>;
}

export function presence<M>(
  client: () => Promise<NatsConnection>,
  options: { namespace?: string; intervalMs?: number } = {},
): Presence<M> {
  const ns = token(options.namespace ?? runNamespace(), "a presence namespace");
  const me = busAgent();
  const interval = options.intervalMs ?? 1000;
  const members = new Map<string, Member<M>>();
  let timer: NodeJS.Timeout | undefined;
  let sub: Subscription | undefined;
  let beat: (() => void) | undefined;

  const online = () => {
    const now = Date.now();
    for (const [k, m] of members) if (now - m.lastSeen > 3 * interval) members.delete(k);
    return [...members.values()];
  };

  return {
    async start(meta) {
      const nc = await client();
      sub = nc.subscribe(`presence.${ns}.*`, {
        callback: (_err, m) => {
          const agent = m.subject.split(".")[2] ?? "";
          if (agent === me) return;
          try {
            const beat = JSON.parse(new TextDecoder().decode(m.data)) as { status: string; meta?: M };
            if (beat.status === "offline") members.delete(agent);
            else
              members.set(agent, {
                agent,
                lastSeen: Date.now(),
                ...(beat.meta !== undefined ? { meta: beat.meta } : {}),
              });
          } catch {
            // not a heartbeat
          }
        },
      });
      beat = () =>
        nc.publish(
          `presence.${ns}.${me}`,
          new TextEncoder().encode(
            JSON.stringify({ status: "online", ts: Date.now(), ...(meta !== undefined ? { meta } : {}) }),
          ),
        );
      beat();
      await nc.flush();
      timer = setInterval(beat, interval);
      timer.unref();
    },
    online,
    async waitFor(agents, { timeoutMs = 30_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = online();
        const ok =
          typeof agents === "number" ? now.length >= agents : agents.every((a) => now.some((m) => m.agent === a));
        if (ok) return now;
        if (Date.now() > deadline)
          throw new Error(
            `presence: ${typeof agents === "number" ? `${agents} agents` : agents.join(", ")} not online within ${timeoutMs} ms (online: ${now.map((m) => m.agent).join(", ") || "none"})`,
          );
        // Hearing the others sooner: answer with a heartbeat of our own.
        beat?.();
        await new Promise((r) => setTimeout(r, Math.min(interval, 200)));
      }
    },
    async stop() {
      clearInterval(timer);
      if (!beat) return; // never started
      beat = undefined;
      const nc = await client();
      if (!nc.isClosed()) {
        nc.publish(
          `presence.${ns}.${me}`,
          new TextEncoder().encode(JSON.stringify({ status: "offline", ts: Date.now() })),
        );
        await nc.flush().catch(() => {});
      }
      sub?.unsubscribe();
    },
  };
}
