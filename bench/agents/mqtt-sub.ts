/** Receives N messages at QoS 1 and reports when the first and last arrived. */
import { connectAsync } from "mqtt";
const n = Number(process.env.BENCH_N ?? 20000);
const c = await connectAsync(process.env.MQTT_URL!, {
  protocolVersion: 5,
  clientId: process.env.MQTT_CLIENT_ID ?? `bench-sub-${Math.random().toString(16).slice(2)}`,
});
let count = 0;
let first = 0;
const done = new Promise<void>((resolve) =>
  c.on("message", () => {
    if (count++ === 0) first = Date.now();
    if (count === n) resolve();
  }),
);
await c.subscribeAsync(process.env.BENCH_TOPIC!, { qos: 1 });
console.log("READY");
await done;
console.log(`RESULT ${JSON.stringify({ received: count, first, last: Date.now() })}`);
await c.endAsync();
