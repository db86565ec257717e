/**
 * warm-pool: one worker per item of a fan-out (fan-out.mjs starts them). It pushes its item's result
 * onto a Redis list through the gate, with the run's own Redis identity (the policy grants it that
 * list and nothing else), and writes it to /output as well.
 */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const item = ctx.env.ITEM ?? "?";
  const result = { item, length: item.length, upper: item.toUpperCase() };
  const redis = await ctx.bus.redis();
  await redis.rpush(`warm-pool:${ctx.env.AIRLOCK_GROUP_RUN_ID ?? "demo"}:results`, JSON.stringify(result));
  await ctx.output.writeJson("result.json", result);
  ctx.log.info(`processed ${item}`);
  return result;
});
