/** Sets process.exitCode as a plain Node program would, and returns normally. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async () => {
  process.exitCode = 3;
  return { done: true };
});
