/** Answers requests (MQTT 5 response topic and correlation data) until STOP. */
import { connectAsync } from "mqtt";
const c = await connectAsync(process.env.MQTT_URL!, {
  protocolVersion: 5,
  clientId: process.env.MQTT_CLIENT_ID ?? `bench-rep-${Math.random().toString(16).slice(2)}`,
});
const done = new Promise<void>((resolve) =>
  c.on("message", (_t, payload, packet) => {
    if (payload.toString() === "STOP") return resolve();
    const p = packet.properties;
    if (p?.responseTopic)
      void c.publishAsync(p.responseTopic, payload, { qos: 0, properties: { correlationData: p.correlationData! } });
  }),
);
await c.subscribeAsync(`${process.env.BENCH_TOPIC!}/rpc`, { qos: 0 });
console.log("READY");
await done;
console.log(`RESULT ${JSON.stringify({})}`);
await c.endAsync();
