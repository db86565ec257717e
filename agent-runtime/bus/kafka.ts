/**
 * Kafka: a kafkajs client, and event streaming (produce; consume in a consumer group from earliest).
 */
import type { Kafka, logCreator } from "kafkajs";
import { onAbort } from "../abort.js";
import { decode, encode, type MessageOptions } from "./codec.js";
import { connectionError, requireEnv } from "./errors.js";

export function kafkaBrokers(): string[] {
  return requireEnv("KAFKA_BROKERS", "kafka", "localhost:9092")
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean);
}

/** kafkajs logs JSON at INFO by default; keep warnings and errors, one line each, on stderr. */
const quietLogs: logCreator =
  () =>
  ({ level, log }) => {
    if (level <= 2)
      console.error(
        `kafka ${level === 1 ? "error" : "warning"}: ${log.message}${log.error ? ` (${String(log.error)})` : ""}`,
      );
  };

export async function createKafka(clientId: string): Promise<Kafka> {
  const { Kafka, logLevel } = await import("kafkajs");
  // Under bus rights the runner hands the run's own SCRAM credentials in these variables.
  const { KAFKA_USERNAME: username, KAFKA_PASSWORD: password } = process.env;
  const sasl = username && password ? { sasl: { mechanism: "scram-sha-512" as const, username, password } } : {};
  return new Kafka({
    clientId,
    brokers: kafkaBrokers(),
    ...sasl,
    connectionTimeout: 5000,
    retry: { retries: 4, initialRetryTime: 200 },
    logLevel: logLevel.WARN,
    logCreator: quietLogs,
  });
}

async function connecting<T>(what: Promise<T>): Promise<T> {
  try {
    return await what;
  } catch (err) {
    throw connectionError("kafka", kafkaBrokers(), err);
  }
}

export interface StreamConsumeOptions {
  /** Consumer group. Default: the agent's name. */
  groupId?: string;
  /** Read the topic from the earliest offset when the group has none. Default true. */
  fromBeginning?: boolean;
  limit?: number;
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  onReady?: () => void;
}

export interface EventStream<T> {
  /** Send events (in order, acknowledged by all in-sync replicas). */
  produce(events: T | T[]): Promise<void>;
  /** Handle events until `limit`, idle timeout or abort; resolves with the count handled. */
  consume(handler: (event: T) => unknown, options?: StreamConsumeOptions): Promise<number>;
  close(): Promise<void>;
}

export function eventStream<T>(
  topic: string,
  kafka: () => Promise<Kafka>,
  defaultGroup: string,
  options: MessageOptions<T> & { partitions?: number } = {},
): EventStream<T> {
  const where = `kafka topic ${topic}`;
  let producer: Awaited<ReturnType<Kafka["producer"]>> | undefined;
  let topicReady: Promise<void> | undefined;
  const ensureTopic = () =>
    (topicReady ??= (async () => {
      const admin = (await kafka()).admin();
      await connecting(admin.connect());
      try {
        const existing = await admin.listTopics();
        if (!existing.includes(topic))
          await admin
            .createTopics({ topics: [{ topic, numPartitions: options.partitions ?? 1 }], waitForLeaders: true })
            .catch(() => {});
      } finally {
        await admin.disconnect();
      }
    })());
  return {
    async produce(events) {
      await ensureTopic();
      if (!producer) {
        producer = (await kafka()).producer({ allowAutoTopicCreation: false, idempotent: false });
        await connecting(producer.connect());
      }
      const list = Array.isArray(events) ? events : [events];
      await producer.send({
        topic,
        acks: -1,
        messages: list.map((e) => ({ value: encode(e, options.schema, where) })),
      });
    },
    async consume(
      handler,
      { groupId = defaultGroup, fromBeginning = true, limit = Infinity, idleTimeoutMs, signal, onReady } = {},
    ) {
      // A stopped agent takes no new work (and does not join the group only to leave it).
      if (signal?.aborted) return 0;
      await ensureTopic();
      const consumer = (await kafka()).consumer({ groupId, allowAutoTopicCreation: false });
      await connecting(consumer.connect());
      await consumer.subscribe({ topic, fromBeginning });
      let handled = 0;
      let idle: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          const armIdle = () => {
            if (idleTimeoutMs === undefined) return;
            clearTimeout(idle);
            idle = setTimeout(resolve, idleTimeoutMs);
          };
          // Also a stop that came while the consumer was connecting.
          onAbort(signal, () => resolve());
          consumer.on(consumer.events.GROUP_JOIN, () => {
            armIdle();
            onReady?.();
          });
          consumer.on(consumer.events.CRASH, (e) => reject(connectionError("kafka", kafkaBrokers(), e.payload.error)));
          consumer
            .run({
              eachMessage: async ({ message }) => {
                if (handled >= limit) return;
                clearTimeout(idle);
                await handler(decode(message.value ?? Buffer.from("null"), options.schema, where));
                handled++;
                if (handled >= limit) resolve();
                else armIdle();
              },
            })
            .catch(reject);
        });
      } finally {
        clearTimeout(idle);
        await consumer.disconnect().catch(() => {});
      }
      return handled;
    },
    async close() {
      await producer?.disconnect().catch(() => {});
      producer = undefined;
    },
  };
}
