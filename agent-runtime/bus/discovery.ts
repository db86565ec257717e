/**
 * Discovery over MQTT, A2A-style: an agent publishes its card (name, description, skills, public
 * keys) retained on a discovery topic, others list the cards, and tasks and their results travel on
 * per-agent topics with task ids and statuses. Topics carry the sender last, so a policy can hold
 * each agent to its own card and to sending as itself:
 *
 *   a2a/<ns>/cards/<agent>                 the card (retained; cleared when the agent stops)
 *   a2a/<ns>/tasks/<to>/<from>             a task for <to>
 *   a2a/<ns>/results/<to>/<from>           a status or result for <to>
 *
 * A card carries an expiry (MQTT 5 message expiry, refreshed while the agent runs), so the card of
 * an agent that was killed outright disappears by itself.
 */
import type { MqttClient } from "mqtt";
import { onAbort } from "../abort.js";
import { BusPermissionError, RequestTimeoutError } from "./errors.js";
import { busAgent, messageId, runNamespace, token } from "./names.js";
import type { PublicKeys } from "./sealed.js";

export interface Skill {
  id: string;
  name?: string;
  description?: string;
}

export interface AgentCard {
  name: string;
  description?: string;
  skills: Skill[];
  /** Sealed-message keys, for agents that talk sealed. */
  publicKeys?: PublicKeys;
  ts?: number;
}

export type TaskStatus = "submitted" | "working" | "completed" | "failed";

export interface Task<I = unknown> {
  id: string;
  from: string;
  skill: string;
  input: I;
}

export interface TaskUpdate<O = unknown> {
  taskId: string;
  from: string;
  status: TaskStatus;
  output?: O;
  error?: string;
}

export interface Discovery {
  /** Publish (retained) this agent's card; it is refreshed until close() and cleared then. */
  publishCard(card: Omit<AgentCard, "name" | "ts"> & { name?: string }): Promise<void>;
  clearCard(): Promise<void>;
  /** The cards published now (what the broker retains), gathered for `waitMs`. */
  cards(waitMs?: number): Promise<AgentCard[]>;
  /** The card of `agent`, once it is published (or one offering `skill`). */
  find(query: { agent?: string; skill?: string }, options?: { timeoutMs?: number }): Promise<AgentCard>;
  /** Send a task and wait for its result; `onStatus` sees every status on the way. */
  sendTask<I, O>(
    agent: string,
    skill: string,
    input: I,
    options?: { timeoutMs?: number; onStatus?: (u: TaskUpdate<O>) => void },
  ): Promise<TaskUpdate<O>>;
  /** Answer tasks for this agent with `handler` until `limit` or the signal; resolves with the count. */
  serveTasks<I, O>(
    handler: (task: Task<I>) => O | Promise<O>,
    options?: { limit?: number; signal?: AbortSignal; onReady?: () => void },
  ): Promise<number>;
  close(): Promise<void>;
}

const CARD_EXPIRY_S = 60;
const CARD_REFRESH_MS = 20_000;

export function discovery(namespace: string | undefined, client: () => Promise<MqttClient>): Discovery {
  const ns = token(namespace ?? runNamespace(), "a discovery namespace");
  const me = busAgent();
  const base = `a2a/${ns}`;
  let refresh: NodeJS.Timeout | undefined;
  let published = false;
  const refused = (what: string, fix: string) => (err: Error & { code?: number }) => {
    throw err.code === 135 ? new BusPermissionError(`mqtt: the policy does not let this agent ${what}: ${fix}`) : err;
  };

  const publish = async (topic: string, value: unknown, opts: { retain?: boolean; expiry?: number } = {}) =>
    (await client()).publishAsync(topic, value === "" ? "" : JSON.stringify(value), {
      qos: 1,
      retain: opts.retain ?? false,
      ...(opts.expiry ? { properties: { messageExpiryInterval: opts.expiry } } : {}),
    });

  /** Messages on `filter` until `stop` says so; returns the unsubscribe. */
  const listen = async (
    filter: string,
    onMessage: (topic: string, value: unknown) => void,
  ): Promise<() => Promise<void>> => {
    const c = await client();
    const handler = (topic: string, payload: Buffer) => {
      if (!matches(filter, topic) || payload.length === 0) return;
      try {
        onMessage(topic, JSON.parse(payload.toString()));
      } catch {
        // not JSON: not one of ours
      }
    };
    c.on("message", handler);
    const granted = await c.subscribeAsync(filter, { qos: 1 }).catch(() => [{ qos: 135 }]);
    if (granted.some((g) => g.qos >= 128)) {
      c.removeListener("message", handler);
      throw new BusPermissionError(
        `mqtt: the policy does not let this agent subscribe to ${filter}: add it (with * for +) to bus.mqtt.subscribe`,
      );
    }
    return async () => {
      c.removeListener("message", handler);
      await c.unsubscribeAsync(filter).catch(() => {});
    };
  };

  const self: Discovery = {
    async publishCard(card) {
      const full: AgentCard = { ...card, name: me, skills: card.skills ?? [] };
      const send = () =>
        publish(`${base}/cards/${me}`, { ...full, ts: Date.now() }, { retain: true, expiry: CARD_EXPIRY_S });
      await send().catch(refused("publish its card", "add a2a/{run}/cards/{agent} to bus.mqtt.publish"));
      published = true;
      clearInterval(refresh);
      refresh = setInterval(() => void send().catch(() => {}), CARD_REFRESH_MS);
      refresh.unref();
    },
    async clearCard() {
      clearInterval(refresh);
      refresh = undefined;
      if (published) await publish(`${base}/cards/${me}`, "", { retain: true }).catch(() => {});
      published = false;
    },
    async cards(waitMs = 500) {
      const found = new Map<string, AgentCard>();
      const stop = await listen(`${base}/cards/+`, (topic, value) => {
        const name = topic.split("/")[3]!;
        found.set(name, { ...(value as AgentCard), name });
      });
      await new Promise((r) => setTimeout(r, waitMs));
      await stop();
      return [...found.values()];
    },
    async find({ agent, skill }, { timeoutMs = 30_000 } = {}) {
      let stop: (() => Promise<void>) | undefined;
      try {
        return await new Promise<AgentCard>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(
                new RequestTimeoutError(
                  `no card ${agent ? `of ${agent}` : `offering ${skill}`} within ${timeoutMs} ms`,
                ),
              ),
            timeoutMs,
          );
          void listen(`${base}/cards/+`, (topic, value) => {
            // The card's name is the one in its topic (the broker held its publisher to it).
            const card = { ...(value as AgentCard), name: topic.split("/")[3]! };
            if (
              (agent === undefined || card.name === agent) &&
              (skill === undefined || card.skills?.some((s) => s.id === skill))
            ) {
              clearTimeout(timer);
              resolve(card);
            }
          }).then((s) => (stop = s), reject);
        });
      } finally {
        await stop?.();
      }
    },
    async sendTask<I, O>(
      agent: string,
      skill: string,
      input: I,
      { timeoutMs = 30_000, onStatus }: { timeoutMs?: number; onStatus?: (u: TaskUpdate<O>) => void } = {},
    ) {
      const task: Task<I> = { id: messageId(), from: me, skill, input };
      let stop: (() => Promise<void>) | undefined;
      try {
        const done = new Promise<TaskUpdate<O>>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new RequestTimeoutError(`no result from ${agent} for task ${task.id} within ${timeoutMs} ms`)),
            timeoutMs,
          );
          void listen(`${base}/results/${me}/${token(agent, "an agent")}`, (topic, value) => {
            const u = { ...(value as TaskUpdate<O>), from: topic.split("/")[4]! };
            if (u.taskId !== task.id) return;
            onStatus?.(u);
            if (u.status === "completed" || u.status === "failed") {
              clearTimeout(timer);
              resolve(u);
            }
          }).then(async (s) => {
            stop = s;
            await publish(`${base}/tasks/${agent}/${me}`, task).catch(
              refused(`send tasks to ${agent}`, "add a2a/{run}/tasks/*/{agent} to bus.mqtt.publish"),
            );
            onStatus?.({ taskId: task.id, from: me, status: "submitted" });
          }, reject);
        });
        return await done;
      } finally {
        await stop?.();
      }
    },
    async serveTasks<I, O>(
      handler: (task: Task<I>) => O | Promise<O>,
      { limit = Infinity, signal, onReady }: { limit?: number; signal?: AbortSignal; onReady?: () => void } = {},
    ) {
      // A stopped agent takes no new tasks.
      if (signal?.aborted) return 0;
      let served = 0;
      let listening: Promise<() => Promise<void>> | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          onAbort(signal, () => resolve());
          listening = listen(`${base}/tasks/${me}/+`, (topic, value) => {
            const task = { ...(value as Task<I>), from: topic.split("/")[4]! };
            const answer = (u: Omit<TaskUpdate<O>, "taskId" | "from">) =>
              publish(`${base}/results/${task.from}/${me}`, { taskId: task.id, from: me, ...u });
            void (async () => {
              await answer({ status: "working" });
              try {
                await answer({ status: "completed", output: await handler(task) });
              } catch (err) {
                await answer({ status: "failed", error: (err as Error).message });
              }
              if (++served >= limit) resolve();
            })().catch(reject);
          });
          listening.then(() => onReady?.(), reject);
        });
      } finally {
        // Also when the stop came while the subscription was still being made.
        const stop = await listening?.catch(() => undefined);
        await stop?.();
      }
      return served;
    },
    async close() {
      await self.clearCard();
    },
  };
  return self;
}

/** MQTT topic filter matching (+ one level, # the rest). */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length || (f[i] !== "+" && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
