/** Subscribes to the answers channel, tells the runner it is ready, and writes the answer it gets. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const channel = `answers:${ctx.env.AIRLOCK_GROUP_RUN_ID ?? "default"}`;
  const subscription = await ctx.bus.pubsub<{ question: string; answer: string; tokens: number }>(channel).subscribe();
  ctx.ready();
  const [message] = await subscription.take(1, { timeoutMs: 60_000 });
  await subscription.close();
  await ctx.output.write("answer.txt", `${message!.answer}\n`);
  return message;
});
