/**
 * ctx.bus: ready-made clients for Redis (ioredis), RabbitMQ (amqplib), Kafka (kafkajs), NATS (nats)
 * and MQTT (mqtt), configured from REDIS_URL, AMQP_URL, KAFKA_BROKERS, NATS_URL and MQTT_URL, plus
 * helpers for the four patterns.
 * Clients are created on first use and closed when the agent function returns.
 */
import type { Redis } from "ioredis";
import type { ChannelModel } from "amqplib";
import type { Kafka } from "kafkajs";
import type { MqttClient } from "mqtt";
import type { NatsConnection } from "nats";
import type { MessageOptions, Schema } from "./codec.js";
import { connectRedis, pubsub, requestReply, type PubSub, type RequestReply } from "./redis.js";
import { connectRabbitMQ, workQueue, type WorkQueue } from "./rabbitmq.js";
import { createKafka, eventStream, type EventStream } from "./kafka.js";
import { connectMqtt } from "./mqtt.js";
import { connectNats } from "./nats.js";

export type { Schema, MessageOptions } from "./codec.js";
export type { PubSub, Subscription, RequestReply } from "./redis.js";
export type { WorkQueue, ConsumeOptions } from "./rabbitmq.js";
export type { EventStream, StreamConsumeOptions } from "./kafka.js";
export { BusConnectionError, BusConfigError, BusPermissionError, MessageValidationError, RequestTimeoutError } from "./errors.js";

export interface Bus {
  /** A connected ioredis client (shared; closed when the agent returns). */
  redis(): Promise<Redis>;
  /** A connected amqplib connection (shared; closed when the agent returns). */
  rabbitmq(): Promise<ChannelModel>;
  /** A kafkajs client (connections are made by its producers, consumers and admin). */
  kafka(): Promise<Kafka>;
  /** A connected nats.js connection, with the run's own inbox prefix (shared; closed when the agent returns). */
  nats(): Promise<NatsConnection>;
  /** A connected mqtt.js client, MQTT 5, with the run's client id (shared; closed when the agent returns). */
  mqtt(): Promise<MqttClient>;
  /** Redis publish/subscribe on a channel. */
  pubsub<T>(channel: string, options?: MessageOptions<T>): PubSub<T>;
  /** RabbitMQ work queue: durable, persistent, acknowledged, with prefetch. */
  workQueue<T>(queue: string, options?: MessageOptions<T>): WorkQueue<T>;
  /** Redis request/reply with a timeout. */
  requestReply<Req, Res>(service: string, options?: { request?: Schema<Req>; reply?: Schema<Res> }): RequestReply<Req, Res>;
  /** Kafka event stream: produce, and consume in a consumer group from the earliest offset. */
  stream<T>(topic: string, options?: MessageOptions<T> & { partitions?: number }): EventStream<T>;
  /** Close every client this bus opened. */
  close(): Promise<void>;
}

export function createBus(agentName: string): Bus {
  let redis: Promise<Redis> | undefined;
  let rabbit: Promise<ChannelModel> | undefined;
  let kafka: Promise<Kafka> | undefined;
  let nats: Promise<NatsConnection> | undefined;
  let mqtt: Promise<MqttClient> | undefined;
  const streams: EventStream<unknown>[] = [];
  const getRedis = () => (redis ??= connectRedis().catch((e) => ((redis = undefined), Promise.reject(e))));
  const getRabbit = () => (rabbit ??= connectRabbitMQ().catch((e) => ((rabbit = undefined), Promise.reject(e))));
  const getKafka = () => (kafka ??= createKafka(`airlock-${agentName}`));
  const getNats = () => (nats ??= connectNats(agentName).catch((e) => ((nats = undefined), Promise.reject(e))));
  const getMqtt = () => (mqtt ??= connectMqtt(agentName).catch((e) => ((mqtt = undefined), Promise.reject(e))));
  return {
    redis: getRedis,
    rabbitmq: getRabbit,
    kafka: getKafka,
    nats: getNats,
    mqtt: getMqtt,
    pubsub: (channel, options) => pubsub(channel, getRedis, options),
    workQueue: (queue, options) => workQueue(queue, getRabbit, options),
    requestReply: (service, options) => requestReply(service, getRedis, options),
    stream: <T>(topic: string, options?: MessageOptions<T> & { partitions?: number }) => {
      const s = eventStream<T>(topic, getKafka, agentName, options);
      streams.push(s as EventStream<unknown>);
      return s;
    },
    async close() {
      await Promise.all(streams.map((s) => s.close()));
      if (redis) await redis.then((r) => r.quit()).catch(() => {});
      if (rabbit) await rabbit.then((c) => c.close()).catch(() => {});
      if (nats) await nats.then((c) => c.drain()).catch(() => {});
      if (mqtt) await mqtt.then((c) => c.endAsync()).catch(() => {});
      redis = rabbit = nats = mqtt = undefined;
    },
  };
}
