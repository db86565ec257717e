/** Publishes N messages at QoS 1, 200 in flight at a time. */
import { connectAsync } from "mqtt";
const n = Number(process.env.BENCH_N ?? 20000);
const c = await connectAsync(process.env.MQTT_URL!, {
  protocolVersion: 5,
  clientId: process.env.MQTT_CLIENT_ID ?? `bench-pub-${Math.random().toString(16).slice(2)}`,
});
const payload = JSON.stringify({ type: "event", data: "x".repeat(100) });
await new Promise((r) => setTimeout(r, 250));
const started = Date.now();
for (let i = 0; i < n; i += 200) {
  await Promise.all(
    Array.from({ length: Math.min(200, n - i) }, () => c.publishAsync(process.env.BENCH_TOPIC!, payload, { qos: 1 })),
  );
}
console.log(`RESULT ${JSON.stringify({ sent: n, started, done: Date.now() })}`);
await c.endAsync();
