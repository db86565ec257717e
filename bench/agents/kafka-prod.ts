/** Produces N messages in batches of 1000 (acks from all in-sync replicas). */
import { Kafka, logLevel } from "kafkajs";
const n = Number(process.env.BENCH_N ?? 100000);
const kafka = new Kafka({
  clientId: "bench-prod",
  brokers: process.env.KAFKA_BROKERS!.split(","),
  logLevel: logLevel.ERROR,
  ...(process.env.KAFKA_USERNAME
    ? {
        sasl: {
          mechanism: "scram-sha-512",
          username: process.env.KAFKA_USERNAME,
          password: process.env.KAFKA_PASSWORD!,
        },
      }
    : {}),
});
const producer = kafka.producer();
await producer.connect();
const value = JSON.stringify({ type: "event", data: "x".repeat(100) });
// As in redis-pub: the clock starts once the connection is up and the container's start has settled.
await new Promise((r) => setTimeout(r, 250));
const started = Date.now();
for (let i = 0; i < n; i += 1000) {
  await producer.send({
    topic: process.env.BENCH_TOPIC!,
    acks: -1,
    messages: Array.from({ length: Math.min(1000, n - i) }, () => ({ value })),
  });
}
console.log(`RESULT ${JSON.stringify({ sent: n, started, done: Date.now() })}`);
await producer.disconnect();
