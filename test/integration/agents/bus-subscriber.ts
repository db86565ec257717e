/** Subscribes with the run's own identity and waits for messages until the connection fails. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const sub = await ctx.bus.pubsub(`faults:${ctx.env.AIRLOCK_RUN_ID}`).subscribe();
  ctx.ready();
  for (;;) await sub.next();
});
