/** Publishes N messages on a subject, flushing every 1000. */
import { connect } from "nats";
const n = Number(process.env.BENCH_N ?? 100000);
const url = new URL(process.env.NATS_URL!);
const nc = await connect({
  servers: `${url.hostname}:${url.port}`,
  ...(url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : {}),
});
const payload = new TextEncoder().encode(JSON.stringify({ type: "event", data: "x".repeat(100) }));
await new Promise((r) => setTimeout(r, 250));
const started = Date.now();
for (let i = 0; i < n; i++) {
  nc.publish(process.env.BENCH_SUBJECT!, payload);
  if (i % 1000 === 999) await nc.flush();
}
await nc.flush();
console.log(`RESULT ${JSON.stringify({ sent: n, started, done: Date.now() })}`);
await nc.drain();
