/**
 * Is refused by Mosquitto on purpose: subscribes to a topic outside its rights and publishes to
 * another (MQTT 5 through ctx.bus.mqtt()), publishes once where it may, then asks what was refused
 * (ctx.denials()) and records it in /output. Mosquitto itself records neither refusal; the gate reads
 * them off the connection.
 */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const mqtt = await ctx.bus.mqtt();
  const run = process.env.AIRLOCK_RUN_ID;
  const subscribed = await mqtt.subscribeAsync("rooms/secret/#", { qos: 1 }).then(
    () => "subscribed",
    (err: Error) => err.message,
  );
  const published = await mqtt.publishAsync("rooms/other/chat", "hi", { qos: 1 }).then(
    () => "published",
    (err: Error) => err.message,
  );
  await mqtt.publishAsync(`rooms/${run}/chat`, "allowed", { qos: 1 });
  const denials = await ctx.denials();
  await ctx.output.writeJson("denials.json", { subscribed, published, denials });
  await mqtt.endAsync();
});
