/** Publishes 10 events to the channel once the consumer is subscribed (see run.yaml: waitFor). */
import { defineAgent } from "airlock/agent";
import { AgentEvent, channelFor } from "./message.js";

export default defineAgent(async (ctx) => {
  const channel = channelFor(ctx.env);
  const topic = ctx.bus.pubsub(channel, { schema: AgentEvent });
  let delivered = 0;
  for (let id = 0; id < 10; id++) {
    delivered += await topic.publish({ id, type: "task", data: `Process item ${id}`, timestamp: Date.now() });
    ctx.log(`published message ${id} to ${channel}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await ctx.output.write("summary.txt", `Published 10 messages to ${channel} (${delivered} deliveries)\n`);
  return { published: 10, delivered };
});
