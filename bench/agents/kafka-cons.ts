/**
 * Consumes N messages from the earliest offset and reports when the first and last arrived. Says
 * READY once it has joined its group, so the producer's clock starts on a consumer that is fetching
 * (the group join is the broker's timing, not the network path being measured).
 */
import { Kafka, logLevel } from "kafkajs";
const n = Number(process.env.BENCH_N ?? 100000);
const kafka = new Kafka({
  clientId: "bench-cons",
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
const consumer = kafka.consumer({ groupId: `${process.env.BENCH_TOPIC}-group` });
await consumer.connect();
await consumer.subscribe({ topic: process.env.BENCH_TOPIC!, fromBeginning: true });
consumer.on(consumer.events.GROUP_JOIN, () => console.log("READY"));
let count = 0;
let first = 0;
await new Promise<void>((resolve) => {
  void consumer.run({
    eachBatch: async ({ batch }) => {
      if (count === 0) first = Date.now();
      count += batch.messages.length;
      if (count >= n) resolve();
    },
  });
});
console.log(`RESULT ${JSON.stringify({ received: count, first, last: Date.now() })}`);
await consumer.disconnect();
