/**
 * Is refused on purpose, then asks what was refused: reads a Redis key outside its rights and a
 * localhost port the policy does not forward, records ctx.denials() in /output, and fails the way
 * an agent does when a refusal stops it (exit 3), so the result's failure reason must name it.
 */
import { appendFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const redis = await ctx.bus.redis();
  const said = await redis.get("not-mine:secret").then(
    () => "read",
    (err: Error) => err.message,
  );
  // Nothing listens on 6390 in the sandbox, and the policy forwards only Redis' port.
  await new Promise<void>((resolve) => {
    const s = connect(6390, "127.0.0.1");
    s.on("error", () => resolve());
    s.on("connect", () => (s.destroy(), resolve()));
    setTimeout(() => (s.destroy(), resolve()), 1500);
  });
  // An agent cannot hide or forge an entry: the folder is the runner's, read-only here.
  const forged = `${JSON.stringify({ layer: "broker", kind: "redis", resource: "forged", rule: "forged", fix: "none" })}\n`;
  const tamper = await Promise.all([
    appendFile("/run/airlock/refusals.jsonl", forged).then(
      () => "appended",
      (e: NodeJS.ErrnoException) => e.code,
    ),
    rm("/run/airlock/refusals.jsonl").then(
      () => "removed",
      (e: NodeJS.ErrnoException) => e.code,
    ),
  ]);
  const denials = await ctx.denials();
  await ctx.output.writeJson("denials.json", { said, denials, tamper });
  process.exitCode = 3;
});
