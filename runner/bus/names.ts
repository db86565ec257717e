/**
 * The names of the broker kinds, without their code: what the CLI needs to check a name, at no
 * start-up cost. registry.ts maps each to its kind (the compiler keeps the two lists the same).
 */
export const BUS_KIND_NAMES = ["redis", "rabbitmq", "kafka", "nats", "mqtt"] as const;
export type BusKindName = (typeof BUS_KIND_NAMES)[number];
