/** Receives N messages on a subject and reports when the first and last arrived. */
import { connect } from "nats";
const n = Number(process.env.BENCH_N ?? 100000);
const url = new URL(process.env.NATS_URL!);
const nc = await connect({
  servers: `${url.hostname}:${url.port}`,
  ...(url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : {}),
});
let count = 0;
let first = 0;
const sub = nc.subscribe(process.env.BENCH_SUBJECT!, {
  max: n,
  callback: () => {
    if (count++ === 0) first = Date.now();
    if (count === n) console.log(`RESULT ${JSON.stringify({ received: count, first, last: Date.now() })}`);
  },
});
await nc.flush();
console.log("READY");
await sub.closed;
await nc.close();
