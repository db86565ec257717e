/**
 * The broker kinds a policy's bus section can name. Adding one is adding a file beside this one
 * and a line here.
 */
import type { BusKind } from "./kind.js";
import { BUS_KIND_NAMES, type BusKindName } from "./names.js";
import { kafkaKind } from "./kafka.js";
import { mqttKind } from "./mqtt.js";
import { natsKind } from "./nats.js";
import { rabbitmqKind } from "./rabbitmq.js";
import { redisKind } from "./redis.js";

export const BUS_KINDS = {
  redis: redisKind,
  rabbitmq: rabbitmqKind,
  kafka: kafkaKind,
  nats: natsKind,
  mqtt: mqttKind,
  // biome-ignore lint/suspicious/noExplicitAny: each kind has its own grant and rights types; the map only needs "some BusKind"
} as const satisfies Record<BusKindName, BusKind<any, any>>;

export { BUS_KIND_NAMES, type BusKindName };
