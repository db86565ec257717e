/** Publishes its card and then waits to be stopped: the card must go with it, also on a timeout. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  await ctx.bus.discovery().publishCard({ description: "waits to be stopped", skills: [{ id: "wait" }] });
  ctx.ready();
  await ctx.stopped();
});
