/** Publishes N messages, pipelined in batches of 1000. */
import { Redis } from "ioredis";
const n = Number(process.env.BENCH_N ?? 100000);
const redis = new Redis(process.env.REDIS_URL!, { enableReadyCheck: false });
const payload = JSON.stringify({ type: "event", data: "x".repeat(100) });
await redis.ping();
// The engine finishes setting up a new container's network for a moment after it starts: start the
// clock once the connection is up and that has settled, in both the gated and the ungated runs.
await new Promise((r) => setTimeout(r, 250));
const started = Date.now();
for (let i = 0; i < n; i += 1000) {
  const p = redis.pipeline();
  for (let j = i; j < Math.min(n, i + 1000); j++) p.publish(process.env.BENCH_CHANNEL!, payload);
  await p.exec();
}
console.log(`RESULT ${JSON.stringify({ sent: n, started, done: Date.now() })}`);
redis.disconnect();
