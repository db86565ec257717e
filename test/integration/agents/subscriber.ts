/** Subscribes to a channel and waits for messages until the connection fails. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const sub = await ctx.bus.pubsub("faults").subscribe();
  ctx.ready();
  for (;;) await sub.next();
});
