/**
 * An agent that steps outside its bus rights: it may use its own keys (notes:{run}:*), and tries to
 * read another team's key and to reconfigure the broker. Redis refuses both (NOPERM); the agent asks
 * airlock what was refused (ctx.denials(): the same entries the run's result will list, each with the
 * policy line that would allow it), and after the run airlock prints them under its summary.
 *
 *   npx airlock up examples/bus-rights/run.yaml
 */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const redis = await ctx.bus.redis();
  const mine = `notes:${ctx.env.AIRLOCK_GROUP_RUN_ID}:today`;
  await redis.set(mine, "written with this run's own identity", "EX", 60);
  ctx.log(`own key ${mine}: ${await redis.get(mine)}`);
  const attempts: Record<string, string> = {};
  for (const [what, call] of [
    ["read billing:secrets", () => redis.get("billing:secrets")],
    ["CONFIG GET dir", () => redis.call("CONFIG", "GET", "dir")],
  ] as const) {
    attempts[what] = await call().then(
      (v) => `allowed: ${String(v)}`,
      (e: Error) => e.message.split(".")[0]!,
    );
    ctx.log(`${what}: ${attempts[what]}`);
  }
  // What a model driving this agent would read to say what it needs, instead of retrying blindly.
  for (const d of await ctx.denials())
    ctx.log(`refused ${d.kind} ${d.action} ${d.resource}: ${d.never ? d.fix : `would need: ${d.fix}`}`);
  return attempts;
});
