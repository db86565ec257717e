/** Answers requests on a subject until STOP. */
import { connect } from "nats";
const url = new URL(process.env.NATS_URL!);
const nc = await connect({
  servers: `${url.hostname}:${url.port}`,
  ...(url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : {}),
  ...(process.env.AIRLOCK_NATS_INBOX_PREFIX ? { inboxPrefix: process.env.AIRLOCK_NATS_INBOX_PREFIX } : {}),
});
const sub = nc.subscribe(`${process.env.BENCH_SUBJECT!}.rpc`);
await nc.flush();
console.log("READY");
for await (const m of sub) {
  if (new TextDecoder().decode(m.data) === "STOP") break;
  m.respond(m.data);
}
console.log(`RESULT ${JSON.stringify({})}`);
await nc.close();
