/** Answers requests on a Redis list until told to stop. */
import { Redis } from "ioredis";
const redis = new Redis(process.env.REDIS_URL!, { enableReadyCheck: false });
const replies = new Redis(process.env.REDIS_URL!, { enableReadyCheck: false });
const queue = `${process.env.BENCH_CHANNEL}:requests`;
let served = 0;
console.log("READY");
for (;;) {
  const item = await redis.brpop(queue, 5);
  if (!item) break;
  if (item[1] === "STOP") break;
  const { id } = JSON.parse(item[1]) as { id: number };
  await replies.lpush(`${process.env.BENCH_CHANNEL}:reply:${id}`, JSON.stringify({ id, ok: true }));
  served++;
}
console.log(`RESULT ${JSON.stringify({ served })}`);
redis.disconnect();
replies.disconnect();
