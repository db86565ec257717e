/** Sends 5 requests and waits for each reply, with a timeout. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const service = `calculator:${ctx.env.AIRLOCK_GROUP_RUN_ID ?? "default"}`;
  const calculator = ctx.bus.requestReply<{ x: number; y: number }, { result: number }>(service);
  const results: { x: number; y: number; result: number }[] = [];
  for (let i = 1; i <= 5; i++) {
    const request = { x: i * 10, y: 20 };
    const reply = await calculator.request(request, { timeoutMs: 5000 });
    ctx.log(`${request.x} + ${request.y} = ${reply.result}`);
    results.push({ ...request, result: reply.result });
  }
  await ctx.output.writeJson("results.json", results);
  return { replies: results.length };
});
