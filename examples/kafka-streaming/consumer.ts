/** Reads all 100 events from the earliest offset, in a consumer group. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const run = ctx.env.AIRLOCK_GROUP_RUN_ID ?? "default";
  const topic = `agent-events-${run}`;
  const results: string[] = [];
  const count = await ctx.bus.stream<{ id: number; value: number }>(topic).consume(
    (event) => {
      results.push(`Processed event ${event.id}: value=${event.value}`);
      if (results.length % 10 === 0) ctx.log(`processed ${results.length} events`);
    },
    { groupId: `agent-group-${run}`, fromBeginning: true, limit: 100, signal: ctx.signal, onReady: () => ctx.ready() },
  );
  await ctx.output.write("results.txt", `${results.join("\n")}\n`);
  await ctx.output.write("summary.txt", `Processed ${count} events\n`);
  return { processed: count };
});
