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
import { discovery, type Discovery } from "./discovery.js";
import { inbox, type Inbox } from "./inbox.js";
import { presence, type Presence } from "./presence.js";
import { room, type QoS, type Room } from "./room.js";
import { Keyring } from "./sealed.js";
import { busAgent } from "./names.js";

export type { Schema, MessageOptions } from "./codec.js";
export type { PubSub, Subscription, RequestReply } from "./redis.js";
export type { WorkQueue, ConsumeOptions } from "./rabbitmq.js";
export type { EventStream, StreamConsumeOptions } from "./kafka.js";
export type { Room, RoomMessage, QoS } from "./room.js";
export type { Discovery, AgentCard, Skill, Task, TaskUpdate, TaskStatus } from "./discovery.js";
export type { Inbox, Envelope, Receipt, ReceiptStatus, SendOptions } from "./inbox.js";
export type { Presence, Member } from "./presence.js";
export { Keyring, SealedMessageError, type SealedMessage, type PublicKeys } from "./sealed.js";
export {
  BusConnectionError,
  BusConfigError,
  BusPermissionError,
  MessageValidationError,
  RequestTimeoutError,
} from "./errors.js";

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
  requestReply<Req, Res>(
    service: string,
    options?: { request?: Schema<Req>; reply?: Schema<Res> },
  ): RequestReply<Req, Res>;
  /** Kafka event stream: produce, and consume in a consumer group from the earliest offset. */
  stream<T>(topic: string, options?: MessageOptions<T> & { partitions?: number }): EventStream<T>;
  /** MQTT room: send to everyone or one agent, reply, QoS (topics rooms/<room>/<to>/<from>). Default room: the run's. */
  room<T>(name?: string, options?: MessageOptions<T> & { qos?: QoS }): Room<T>;
  /** MQTT discovery, A2A-style: retained agent cards, tasks and results on per-agent topics. */
  discovery(namespace?: string): Discovery;
  /** NATS inbox: receipted sends with retries, dedupe, expiry, thread and trace ids; requests. */
  inbox<T>(options?: { namespace?: string; schema?: Schema<T> }): Inbox<T>;
  /** NATS presence: heartbeats, who is online, eviction. */
  presence<M>(options?: { namespace?: string; intervalMs?: number }): Presence<M>;
  /** This agent's keys for sealed (signed, end-to-end encrypted) messages, made in this container on first use. */
  keyring(): Keyring;
  /** Close every client this bus opened (clearing this agent's discovery card, saying goodbye on presence). */
  close(): Promise<void>;
}

export function createBus(agentName: string): Bus {
  let redis: Promise<Redis> | undefined;
  let rabbit: Promise<ChannelModel> | undefined;
  let kafka: Promise<Kafka> | undefined;
  let nats: Promise<NatsConnection> | undefined;
  let mqtt: Promise<MqttClient> | undefined;
  const streams: EventStream<unknown>[] = [];
  const closers: (() => Promise<void>)[] = [];
  let keys: Keyring | undefined;
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
    room: (name, options) => room(name, getMqtt, options),
    discovery: (namespace) => {
      const d = discovery(namespace, getMqtt);
      closers.push(() => d.close());
      return d;
    },
    inbox: (options) => inbox(getNats, options),
    presence: <M>(options?: { namespace?: string; intervalMs?: number }) => {
      const p = presence<M>(getNats, options);
      closers.push(() => p.stop());
      return p;
    },
    keyring: () => (keys ??= new Keyring(busAgent())),
    async close() {
      // First what others see of this agent (its card, its presence), while the connections are up.
      await Promise.all(closers.splice(0).map((c) => c().catch(() => {})));
      await Promise.all(streams.map((s) => s.close()));
      if (redis) await redis.then((r) => r.quit()).catch(() => {});
      if (rabbit) await rabbit.then((c) => c.close()).catch(() => {});
      if (nats) await nats.then((c) => c.drain()).catch(() => {});
      if (mqtt) await mqtt.then((c) => c.endAsync()).catch(() => {});
      redis = rabbit = nats = mqtt = undefined;
    },
  };
}
