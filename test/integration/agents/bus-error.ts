/** Connects to the Redis that REDIS_URL names and reports the error the runtime raises. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  try {
    await ctx.bus.redis();
    return { connected: true };
  } catch (err) {
    return { name: (err as Error).name, message: (err as Error).message };
  }
});
