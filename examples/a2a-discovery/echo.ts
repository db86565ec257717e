/** An agent with one skill, echo: it serves tasks, then publishes its card so that others find it. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const discovery = ctx.bus.discovery();
  const served = await discovery.serveTasks<{ text: string }, { text: string }>(
    (task) => {
      ctx.log(`task ${task.id} from ${task.from}: ${task.skill} "${task.input.text}"`);
      return { text: task.input.text };
    },
    {
      limit: 1,
      signal: ctx.signal,
      // Listening for tasks first, then the card: whoever finds the card can send at once.
      onReady: () =>
        void discovery
          .publishCard({
            description: "Repeats what it is sent",
            skills: [{ id: "echo", name: "Echo", description: "returns its input" }],
          })
          .then(() => ctx.ready()),
    },
  );
  // The card goes when the agent does (also on a timeout or Ctrl-C: the runtime clears it on the way out).
  return { served };
});
