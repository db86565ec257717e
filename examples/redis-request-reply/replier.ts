/** Answers 5 "calculate" requests, then stops. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const service = `calculator:${ctx.env.AIRLOCK_GROUP_RUN_ID ?? "default"}`;
  ctx.log(`serving ${service}`);
  ctx.ready();
  const served = await ctx.bus.requestReply<{ x: number; y: number }, { result: number }>(service).serve(
    ({ x, y }) => {
      ctx.log(`processing request ${x} + ${y}`);
      return { result: x + y };
    },
    { limit: 5, signal: ctx.signal },
  );
  await ctx.output.write("summary.txt", `Processed ${served} requests\n`);
  return { served };
});
