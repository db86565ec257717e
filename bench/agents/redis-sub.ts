/** Receives N messages on a channel and reports when the first and last arrived. */
import { Redis } from "ioredis";
const n = Number(process.env.BENCH_N ?? 100000);
const sub = new Redis(process.env.REDIS_URL!, { enableReadyCheck: false });
let count = 0;
let first = 0;
sub.on("message", () => {
  if (count++ === 0) first = Date.now();
  if (count === n) {
    console.log(`RESULT ${JSON.stringify({ received: count, first, last: Date.now() })}`);
    sub.disconnect();
  }
});
await sub.subscribe(process.env.BENCH_CHANNEL!);
console.log("READY");
