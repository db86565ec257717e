/** Sends N requests one after another and reports every round trip in microseconds. */
import { connect } from "nats";
const n = Number(process.env.BENCH_N ?? 2000);
const url = new URL(process.env.NATS_URL!);
const nc = await connect({
  servers: `${url.hostname}:${url.port}`,
  ...(url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : {}),
  ...(process.env.AIRLOCK_NATS_INBOX_PREFIX ? { inboxPrefix: process.env.AIRLOCK_NATS_INBOX_PREFIX } : {}),
});
const rtts: number[] = [];
const body = new TextEncoder().encode("ping");
for (let i = 0; i < n; i++) {
  const t = process.hrtime.bigint();
  await nc.request(`${process.env.BENCH_SUBJECT!}.rpc`, body, { timeout: 5000 });
  rtts.push(Number(process.hrtime.bigint() - t) / 1000);
}
nc.publish(`${process.env.BENCH_SUBJECT!}.rpc`, new TextEncoder().encode("STOP"));
await nc.flush();
console.log(`RESULT ${JSON.stringify({ rtts })}`);
await nc.close();
