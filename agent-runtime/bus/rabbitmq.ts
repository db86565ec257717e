/**
 * RabbitMQ: a connected amqplib connection, and a work queue (durable queue, persistent messages,
 * prefetch, acknowledgement after the handler succeeds).
 */
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { onAbort } from "../abort.js";
import { decode, encode, type MessageOptions } from "./codec.js";
import { BusPermissionError, connectionError, requireEnv } from "./errors.js";

export function amqpUrl(): string {
  return requireEnv("AMQP_URL", "rabbitmq", "amqp://guest:guest@localhost:5672");
}

function endpointOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === "amqps:" ? "5671" : "5672")}`;
}

export async function connectRabbitMQ(): Promise<ChannelModel> {
  const url = amqpUrl();
  const amqp = await import("amqplib");
  try {
    const connection = await amqp.connect(url, { timeout: 5000 });
    connection.on("error", () => {}); // surfaced through the failing operation instead
    return connection;
  } catch (err) {
    throw connectionError("rabbitmq", [endpointOf(url)], err);
  }
}

export interface ConsumeOptions {
  /** Unacknowledged messages this consumer holds at once. Default 1 (fair dispatch). */
  prefetch?: number;
  /** Stop after this many messages. */
  limit?: number;
  /** Stop when no message arrived for this long (ms). */
  idleTimeoutMs?: number;
  /** Before the first message, wait this long instead (a publisher may start well after its consumers). Default: idleTimeoutMs. */
  firstMessageTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called once the consumer is registered (e.g. ctx.ready). */
  onReady?: () => void;
}

export interface WorkQueue<T> {
  /** Send one persistent task. */
  send(task: T): Promise<void>;
  /**
   * Process tasks with `handler`; each is acknowledged after the handler resolves and rejected
   * (not requeued) when it throws. Resolves with the number of tasks acknowledged.
   */
  consume(handler: (task: T) => unknown, options?: ConsumeOptions): Promise<number>;
}

/**
 * The queue, there before use: under bus rights (AIRLOCK_AMQP_EXCHANGE) the runner declared every
 * queue the policy names exactly and the agent may not configure them, so they are only checked
 * (passively, on a channel of its own: a failed check closes it); a queue in a consume prefix the
 * agent owns is declared if missing. Without bus rights, declared as always.
 */
async function ensureQueue(connection: ChannelModel, channel: Channel, queue: string): Promise<void> {
  if (!process.env.AIRLOCK_AMQP_EXCHANGE) {
    await channel.assertQueue(queue, { durable: true });
    return;
  }
  const probe = await connection.createChannel();
  probe.on("error", () => {});
  const there = await probe.checkQueue(queue).then(
    () => true,
    () => false,
  );
  await probe.close().catch(() => {});
  if (!there) await channel.assertQueue(queue, { durable: true });
}

export function workQueue<T>(
  queue: string,
  connection: () => Promise<ChannelModel>,
  options: MessageOptions<T> = {},
): WorkQueue<T> {
  const where = `rabbitmq queue ${queue}`;
  return {
    async send(task) {
      const conn = await connection();
      const channel = await conn.createConfirmChannel();
      // Under bus rights, the run's own exchange reaches exactly the queues the policy grants.
      const exchange = process.env.AIRLOCK_AMQP_EXCHANGE;
      let returned = false;
      channel.on("return", () => (returned = true));
      try {
        await ensureQueue(conn, channel, queue);
        const body = Buffer.from(encode(task, options.schema, where));
        if (exchange)
          channel.publish(exchange, queue, body, {
            persistent: true,
            contentType: "application/json",
            mandatory: true,
          });
        else channel.sendToQueue(queue, body, { persistent: true, contentType: "application/json" });
        await channel.waitForConfirms();
        if (returned)
          throw new BusPermissionError(
            `rabbitmq: the policy does not let this agent publish to queue ${queue}: add it to bus.rabbitmq.queues.publish`,
          );
      } finally {
        await channel.close().catch(() => {});
      }
    },
    async consume(
      handler,
      { prefetch = 1, limit = Infinity, idleTimeoutMs, firstMessageTimeoutMs, signal, onReady } = {},
    ) {
      // A stopped agent takes no new work.
      if (signal?.aborted) return 0;
      const conn = await connection();
      const channel = await conn.createChannel();
      await ensureQueue(conn, channel, queue);
      await channel.prefetch(prefetch);
      let acked = 0;
      let idle: NodeJS.Timeout | undefined;
      return new Promise<number>((resolve, reject) => {
        let tag: string | undefined;
        let finished = false;
        const finish = (err?: unknown) => {
          if (finished) return;
          finished = true;
          clearTimeout(idle);
          stopListening();
          const close = async () => {
            if (tag) await channel.cancel(tag).catch(() => {});
            await channel.close().catch(() => {});
          };
          void close().then(() => (err ? reject(err) : resolve(acked)));
        };
        const armIdle = () => {
          const wait = acked === 0 ? (firstMessageTimeoutMs ?? idleTimeoutMs) : idleTimeoutMs;
          if (wait === undefined) return;
          clearTimeout(idle);
          idle = setTimeout(() => finish(), wait);
        };
        // Also a stop that came while the channel was being opened.
        const stopListening = onAbort(signal, () => finish());
        channel.on("close", () => finish(finished ? undefined : new Error(`${where}: the channel closed`)));
        const onMessage = async (msg: ConsumeMessage | null) => {
          if (!msg) return finish(new Error(`${where}: the broker cancelled the consumer`));
          if (finished) return;
          clearTimeout(idle);
          try {
            await handler(decode(msg.content, options.schema, where));
            channel.ack(msg);
            acked++;
          } catch (err) {
            channel.nack(msg, false, false);
            return finish(err);
          }
          if (acked >= limit) finish();
          else armIdle();
        };
        channel
          .consume(queue, (msg) => void onMessage(msg), { noAck: false })
          .then((ok) => {
            tag = ok.consumerTag;
            armIdle();
            onReady?.();
          })
          .catch(finish);
      });
    },
  };
}
