/**
 * Rooms over MQTT: agents join a room, send to everyone or to one agent, and reply to a message.
 * Topics are rooms/<room>/<audience>/<sender>, audience "all" or an agent, so a policy can hold each
 * agent to sending as itself and reading only what is for everyone or for it:
 *
 *   bus: { mqtt: { publish: ["rooms/{run}/*\/{agent}"], subscribe: ["rooms/{run}/all/*", "rooms/{run}/{agent}/*"] } }
 *
 * The sender of a message is the one in its topic (which the broker enforced), never a claim in it.
 */
import type { MqttClient } from "mqtt";
import { check, type MessageOptions } from "./codec.js";
import { BusPermissionError, RequestTimeoutError } from "./errors.js";
import { busAgent, messageId, runNamespace, token } from "./names.js";

export type QoS = 0 | 1 | 2;

export interface RoomMessage<T> {
  id: string;
  from: string;
  /** "all", or the agent it was sent to. */
  to: string;
  ts: number;
  inReplyTo?: string;
  body: T;
}

export interface Room<T> {
  readonly name: string;
  /** Subscribe to what is for everyone and for this agent; messages from then on are kept until read. */
  join(): Promise<void>;
  /** Send to everyone, or `to` one agent; resolves with the message sent (acknowledged by the broker at QoS 1 and 2). */
  send(body: T, options?: { to?: string; inReplyTo?: string; qos?: QoS }): Promise<RoomMessage<T>>;
  /** Answer a message: to its sender, in reply to its id. */
  reply(message: RoomMessage<T>, body: T, options?: { qos?: QoS }): Promise<RoomMessage<T>>;
  next(timeoutMs?: number): Promise<RoomMessage<T>>;
  take(n: number, options?: { timeoutMs?: number }): Promise<RoomMessage<T>[]>;
  leave(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<RoomMessage<T>>;
}

export function room<T>(
  name: string | undefined,
  client: () => Promise<MqttClient>,
  options: MessageOptions<T> & { qos?: QoS } = {},
): Room<T> {
  const roomName = token(name ?? runNamespace(), "a room name");
  const me = busAgent();
  const base = `rooms/${roomName}`;
  const defaultQos = options.qos ?? 1;
  const queue: RoomMessage<T>[] = [];
  const waiters: ((m: RoomMessage<T>) => void)[] = [];
  let listener: ((topic: string, payload: Buffer) => void) | undefined;

  const onMessage = (topic: string, payload: Buffer) => {
    if (!topic.startsWith(`${base}/`)) return;
    const [, , to, from] = topic.split("/");
    if (!to || !from || from === me) return;
    let m: RoomMessage<T>;
    try {
      const raw = JSON.parse(payload.toString()) as RoomMessage<unknown>;
      m = { ...raw, from, to, body: check(raw.body, options.schema, `room ${roomName}`) };
    } catch {
      return; // not a room message, or not one the schema accepts
    }
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  };

  const self: Room<T> = {
    name: roomName,
    async join() {
      const c = await client();
      listener = onMessage;
      c.on("message", listener);
      const granted = await c
        .subscribeAsync([`${base}/all/+`, `${base}/${me}/+`], { qos: defaultQos })
        .catch((err: { packet?: { granted?: number[] } }) => {
          throw new BusPermissionError(
            `mqtt: the policy does not let this agent read room ${roomName} (SUBACK ${err.packet?.granted?.join(",") ?? "refused"}): add rooms/{run}/all/* and rooms/{run}/{agent}/* to bus.mqtt.subscribe`,
          );
        });
      if (granted.some((g) => g.qos >= 128))
        throw new BusPermissionError(
          `mqtt: room ${roomName} refused: add rooms/{run}/all/* and rooms/{run}/{agent}/* to bus.mqtt.subscribe`,
        );
    },
    async send(body, { to = "all", inReplyTo, qos = defaultQos } = {}) {
      const m: RoomMessage<T> = {
        id: messageId(),
        from: me,
        to: token(to, "a recipient"),
        ts: Date.now(),
        ...(inReplyTo ? { inReplyTo } : {}),
        body: check(body, options.schema, `room ${roomName}`),
      };
      await (await client())
        .publishAsync(`${base}/${m.to}/${me}`, JSON.stringify(m), { qos })
        .catch((err: Error & { code?: number }) => {
          throw err.code === 135
            ? new BusPermissionError(
                `mqtt: the policy does not let this agent send in room ${roomName}: add rooms/{run}/*/{agent} to bus.mqtt.publish`,
              )
            : err;
        });
      return m;
    },
    reply: (message, body, opts) => self.send(body, { to: message.from, inReplyTo: message.id, ...opts }),
    next: (timeoutMs) =>
      new Promise((resolve, reject) => {
        const m = queue.shift();
        if (m) return resolve(m);
        waiters.push(resolve);
        if (timeoutMs !== undefined) {
          setTimeout(() => {
            const i = waiters.indexOf(resolve);
            if (i >= 0)
              waiters.splice(i, 1),
                reject(new RequestTimeoutError(`room ${roomName}: no message within ${timeoutMs} ms`));
          }, timeoutMs);
        }
      }),
    async take(n, { timeoutMs } = {}) {
      const out: RoomMessage<T>[] = [];
      while (out.length < n) out.push(await self.next(timeoutMs));
      return out;
    },
    async leave() {
      const c = await client();
      if (listener) c.removeListener("message", listener);
      await c.unsubscribeAsync([`${base}/all/+`, `${base}/${me}/+`]).catch(() => {});
    },
    async *[Symbol.asyncIterator]() {
      for (;;) yield await self.next();
    },
  };
  return self;
}
