/** Takes tasks one at a time (prefetch 1), acknowledges each after processing it, stops when idle (4 s after a task; up to a minute for the first). */
import { defineAgent } from "airlock/agent";

interface Task {
  id: number;
  data: string;
  priority: number;
}

export default defineAgent(async (ctx) => {
  const queue = `task-queue:${ctx.env.AIRLOCK_GROUP_RUN_ID ?? "default"}`;
  const processed: Task[] = [];
  const count = await ctx.bus.workQueue<Task>(queue).consume(
    async (task) => {
      ctx.log(`processing task ${task.id}`);
      await new Promise((r) => setTimeout(r, 150)); // the "work"
      processed.push(task);
    },
    {
      prefetch: 1,
      idleTimeoutMs: 4000,
      firstMessageTimeoutMs: 60_000,
      signal: ctx.signal,
      onReady: () => (ctx.log(`waiting for tasks on ${queue}`), ctx.ready()),
    },
  );
  await ctx.output.writeJson("results.json", { worker: ctx.name, tasks: processed.map((t) => t.id) });
  await ctx.output.write("summary.txt", `Processed ${count} tasks\n`);
  return { processed: count };
});
