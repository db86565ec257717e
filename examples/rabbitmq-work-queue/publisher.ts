/** Sends 10 persistent tasks to the work queue once both workers are ready. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const queue = `task-queue:${ctx.env.AIRLOCK_GROUP_RUN_ID ?? "default"}`;
  const tasks = ctx.bus.workQueue<{ id: number; data: string; priority: number }>(queue);
  for (let id = 0; id < 10; id++) {
    await tasks.send({ id, data: `Task ${id}`, priority: id % 3 });
    ctx.log(`published task ${id}`);
  }
  await ctx.output.write("summary.txt", `Published 10 tasks to ${queue}\n`);
  return { published: 10 };
});
