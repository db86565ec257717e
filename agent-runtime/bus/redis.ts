/**
 * Redis: a connected ioredis client, publish/subscribe, and request/reply over lists.
 */
import { randomUUID } from "node:crypto";
import type { Redis as RedisClient, RedisOptions } from "ioredis";
import { check, decode, encode, type MessageOptions } from "./codec.js";
import { connectionError, requireEnv, RequestTimeoutError } from "./errors.js";

export function redisUrl(): string {
  return requireEnv("REDIS_URL", "redis", "redis://localhost:6379");
}

function endpointOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || "6379"}`;
}

/** A new connected client. Connection failures become a BusConnectionError naming the endpoint. */
export async function connectRedis(options: RedisOptions = {}): Promise<RedisClient> {
  const url = redisUrl();
  const { Redis } = await import("ioredis");
  // No ready check: it runs INFO, which an identity with only the rights its policy grants may not.
  const client = new Redis(url, {
    lazyConnect: true,
    enableReadyCheck: false,
    maxRetriesPerRequest: 2,
    connectTimeout: 5000,
    retryStrategy: (n) => (n > 3 ? null : 100 * n),
    ...options,
  });
  // ioredis rejects connect() with a generic error; the socket's own error (with its code) arrives here.
  let socketError: unknown;
  client.on("error", (err) => (socketError ??= err));
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw connectionError("redis", [endpointOf(url)], socketError ?? err);
  }
  return client;
}

export interface Subscription<T> extends AsyncIterable<T> {
  /** The next message; rejects after timeoutMs if given. */
  next(timeoutMs?: number): Promise<T>;
  /** The next n messages. */
  take(n: number, options?: { timeoutMs?: number }): Promise<T[]>;
  close(): Promise<void>;
}

export interface PubSub<T> {
  /** Publish one message; resolves with the number of subscribers that received it. */
  publish(message: T): Promise<number>;
  /** Subscribe; messages published from now on are queued until read. */
  subscribe(): Promise<Subscription<T>>;
}

export function pubsub<T>(
  channel: string,
  client: () => Promise<RedisClient>,
  options: MessageOptions<T> = {},
): PubSub<T> {
  const where = `redis channel ${channel}`;
  return {
    async publish(message) {
      return (await client()).publish(channel, encode(message, options.schema, where));
    },
    async subscribe() {
      const sub = await connectRedis();
      const queue: T[] = [];
      const waiters: { resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
      let failure: unknown;
      sub.on("message", (_ch: string, raw: string) => {
        let value: T;
        try {
          value = decode(raw, options.schema, where);
        } catch (err) {
          failure = err;
          waiters.splice(0).forEach((w) => {
            w.reject(err);
          });
          return;
        }
        const waiter = waiters.shift();
        if (waiter) waiter.resolve(value);
        else queue.push(value);
      });
      // "end": ioredis gave up reconnecting (a transient "close" is retried first).
      sub.on("end", () => {
        failure ??= connectionError("redis", [endpointOf(redisUrl())], new Error("connection closed"));
        waiters.splice(0).forEach((w) => {
          w.reject(failure);
        });
      });
      await sub.subscribe(channel);
      const next = (timeoutMs?: number) =>
        new Promise<T>((resolve, reject) => {
          if (queue.length) return resolve(queue.shift()!);
          if (failure) return reject(failure);
          const waiter = { resolve, reject };
          waiters.push(waiter);
          if (timeoutMs !== undefined) {
            setTimeout(() => {
              const i = waiters.indexOf(waiter);
              if (i >= 0)
                waiters.splice(i, 1), reject(new RequestTimeoutError(`${where}: no message within ${timeoutMs} ms`));
            }, timeoutMs);
          }
        });
      const close = async () => {
        sub.removeAllListeners("end");
        await sub.quit().catch(() => sub.disconnect());
      };
      return {
        next,
        async take(n, opts = {}) {
          const out: T[] = [];
          while (out.length < n) out.push(await next(opts.timeoutMs));
          return out;
        },
        close,
        async *[Symbol.asyncIterator]() {
          try {
            for (;;) yield await next();
          } finally {
            await close();
          }
        },
      };
    },
  };
}

export interface RequestReply<Req, Res> {
  /** Send a request and wait for its reply; rejects with RequestTimeoutError after timeoutMs (default 30 s). */
  request(body: Req, options?: { timeoutMs?: number }): Promise<Res>;
  /** Answer requests with handler until `limit` were answered or the signal aborts; resolves with the count. */
  serve(
    handler: (body: Req) => Res | Promise<Res>,
    options?: { limit?: number; signal?: AbortSignal },
  ): Promise<number>;
}

interface Envelope<T> {
  id: string;
  replyTo: string;
  body: T;
}

export function requestReply<Req, Res>(
  service: string,
  client: () => Promise<RedisClient>,
  options: { request?: MessageOptions<Req>["schema"]; reply?: MessageOptions<Res>["schema"] } = {},
): RequestReply<Req, Res> {
  const queue = `airlock:rpc:${service}:requests`;
  return {
    async request(body, { timeoutMs = 30_000 } = {}) {
      const id = randomUUID();
      const replyTo = `airlock:rpc:${service}:reply:${id}`;
      const envelope: Envelope<Req> = { id, replyTo, body: check(body, options.request, `request to ${service}`) };
      const blocking = await connectRedis();
      try {
        await (await client()).lpush(queue, JSON.stringify(envelope));
        const reply = await blocking.brpop(replyTo, Math.max(timeoutMs / 1000, 0.01));
        if (!reply) throw new RequestTimeoutError(`no reply from ${service} within ${timeoutMs} ms (request ${id})`);
        return decode(reply[1], options.reply, `reply from ${service}`);
      } finally {
        blocking.disconnect();
      }
    },
    async serve(handler, { limit = Infinity, signal } = {}) {
      // A stopped agent takes no new requests.
      if (signal?.aborted) return 0;
      const blocking = await connectRedis();
      const writer = await client();
      let served = 0;
      try {
        while (served < limit && !signal?.aborted) {
          const item = await blocking.brpop(queue, 1);
          if (!item) continue;
          const envelope = JSON.parse(item[1]) as Envelope<unknown>;
          const body = check(envelope.body, options.request, `request to ${service}`);
          const result = await handler(body);
          await writer
            .multi()
            .lpush(envelope.replyTo, encode(result, options.reply, `reply from ${service}`))
            .expire(envelope.replyTo, 60)
            .exec();
          served++;
        }
        return served;
      } finally {
        blocking.disconnect();
      }
    },
  };
}
