/** Sends N requests one after another and reports every round trip in microseconds. */
import { Redis } from "ioredis";
const n = Number(process.env.BENCH_N ?? 2000);
const redis = new Redis(process.env.REDIS_URL!, { enableReadyCheck: false });
const blocking = new Redis(process.env.REDIS_URL!, { enableReadyCheck: false });
const queue = `${process.env.BENCH_CHANNEL}:requests`;
const rtts: number[] = [];
for (let id = 0; id < n; id++) {
  const t = process.hrtime.bigint();
  await redis.lpush(queue, JSON.stringify({ id }));
  await blocking.brpop(`${process.env.BENCH_CHANNEL}:reply:${id}`, 5);
  rtts.push(Number(process.hrtime.bigint() - t) / 1000);
}
await redis.lpush(queue, "STOP");
console.log(`RESULT ${JSON.stringify({ rtts })}`);
redis.disconnect();
blocking.disconnect();
