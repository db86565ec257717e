/** Subscribes first, tells the runner it is ready, then receives the producer's 10 events. */
import { defineAgent } from "airlock/agent";
import { AgentEvent, channelFor } from "./message.js";

export default defineAgent(async (ctx) => {
  const channel = channelFor(ctx.env);
  const subscription = await ctx.bus.pubsub(channel, { schema: AgentEvent }).subscribe();
  ctx.log(`subscribed to ${channel}, waiting for messages...`);
  ctx.ready();

  const results: string[] = [];
  for (const event of await subscription.take(10, { timeoutMs: 30_000 })) {
    ctx.log(`received message ${event.id}: ${event.data}`);
    results.push(`Processed: ${event.data}`);
  }
  await subscription.close();

  await ctx.output.write("results.txt", `${results.join("\n")}\n`);
  await ctx.output.write("summary.txt", `Received ${results.length} messages from ${channel}\n`);
  return { received: results.length };
});
