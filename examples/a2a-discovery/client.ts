/** Finds an agent that offers the echo skill (by its card, not by being told), and sends it a task. */
import { defineAgent, type TaskStatus } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const discovery = ctx.bus.discovery();
  const card = await discovery.find({ skill: "echo" }, { timeoutMs: 30_000 });
  ctx.log(`found ${card.name}: ${card.description} (skills: ${card.skills.map((s) => s.id).join(", ")})`);
  const statuses: TaskStatus[] = [];
  const result = await discovery.sendTask<{ text: string }, { text: string }>(
    card.name,
    "echo",
    { text: "hello, agent" },
    { onStatus: (u) => statuses.push(u.status) },
  );
  ctx.log(`result: ${result.status} "${result.output?.text}"`);
  await ctx.output.writeJson("result.json", { card, statuses, result });
  return { agent: card.name, statuses, output: result.output };
});
