/** Sends N requests one after another (MQTT 5 request/response) and reports every round trip in microseconds. */
import { connectAsync } from "mqtt";
const n = Number(process.env.BENCH_N ?? 2000);
const c = await connectAsync(process.env.MQTT_URL!, {
  protocolVersion: 5,
  clientId: process.env.MQTT_CLIENT_ID ?? `bench-req-${Math.random().toString(16).slice(2)}`,
});
const replies = `${process.env.BENCH_TOPIC!}/replies`;
let pending: (() => void) | undefined;
c.on("message", () => pending?.());
await c.subscribeAsync(replies, { qos: 0 });
const rtts: number[] = [];
for (let i = 0; i < n; i++) {
  const t = process.hrtime.bigint();
  const answered = new Promise<void>((r) => (pending = r));
  await c.publishAsync(`${process.env.BENCH_TOPIC!}/rpc`, "ping", {
    qos: 0,
    properties: { responseTopic: replies, correlationData: Buffer.from(String(i)) },
  });
  await answered;
  rtts.push(Number(process.hrtime.bigint() - t) / 1000);
}
await c.publishAsync(`${process.env.BENCH_TOPIC!}/rpc`, "STOP", { qos: 1 });
console.log(`RESULT ${JSON.stringify({ rtts })}`);
await c.endAsync();
