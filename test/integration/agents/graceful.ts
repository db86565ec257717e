/** Waits until the runner stops it, then flushes its state through ctx.signal before exiting. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  ctx.ready();
  ctx.log("ready, waiting to be stopped");
  await ctx.stopped();
  await ctx.output.write("flushed.txt", "flushed on stop\n");
  ctx.log("flushed");
  return { stoppedCleanly: true };
});
