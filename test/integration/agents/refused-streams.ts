/**
 * Is refused by NATS, Kafka and RabbitMQ on purpose: publishes to a subject outside its rights,
 * produces to a topic outside them, publishes to an exchange it may not, then asks what was refused
 * (ctx.denials()) and records it in /output.
 */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const nats = await ctx.bus.nats();
  // NATS says a refused publish asynchronously (a permissions violation), and keeps the connection.
  nats.publish("other.subject", "x");
  await nats.flush();
  const kafka = await ctx.bus.kafka();
  const producer = kafka.producer({ retry: { retries: 0 } });
  await producer.connect();
  const produced = await producer.send({ topic: "not-mine", messages: [{ value: "x" }] }).then(
    () => "sent",
    (err: Error) => err.message,
  );
  await producer.disconnect();
  const amqp = await ctx.bus.rabbitmq();
  const channel = await amqp.createChannel();
  // RabbitMQ closes the channel for a refused publish; the channel's error says so.
  const closed = new Promise<string>((resolve) => channel.on("error", (err: Error) => resolve(err.message)));
  channel.publish("not-mine", "", Buffer.from("x"));
  const published = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r("no answer"), 5000))]);
  await amqp.close().catch(() => {});
  const denials = await ctx.denials();
  await ctx.output.writeJson("denials.json", { produced, published, denials });
});
