/**
 * The coordinator: once four workers are online with their keys, sends each a sealed task (a secret
 * text and numbers), opens their sealed answers, and shows that a replayed and a tampered message
 * are refused. The broker only ever carries sealed bytes.
 */
import { defineAgent, type PublicKeys, type SealedMessage } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const keys = ctx.bus.keyring();
  const presence = ctx.bus.presence<PublicKeys>();
  await presence.start(keys.publicKeys());
  const workers = (
    await presence.waitFor(["worker-1", "worker-2", "worker-3", "worker-4"], { timeoutMs: 30_000 })
  ).filter((m) => m.agent.startsWith("worker-"));
  for (const w of workers) keys.trust(w.meta!);
  const inbox = ctx.bus.inbox<SealedMessage>();
  const results: Record<string, { secret: string; sum: number }> = {};
  let first: SealedMessage | undefined;
  await Promise.all(
    workers.map(async ({ agent }, i) => {
      const task = keys.seal(agent, { secret: `plan for ${agent}: attack at dawn`, numbers: [i, i + 1, i + 2] });
      if (agent === "worker-1") first = task;
      const answer = await inbox.request<SealedMessage>(agent, task, { timeoutMs: 5000 });
      results[agent] = keys.open(answer);
      ctx.log(`${agent} answered (sealed): sum ${results[agent]!.sum}`);
    }),
  );
  // The same sealed task again (a captured copy), and one with a byte changed: both must be refused.
  const replay = await inbox.request<{ refused?: string }>("worker-1", first!, { timeoutMs: 5000 });
  const ct = Buffer.from(first!.ct, "base64");
  ct[3]! ^= 0x40;
  const tampered = await inbox.request<{ refused?: string }>(
    "worker-1",
    { ...keys.seal("worker-1", { secret: "x", numbers: [] }), ct: ct.toString("base64") },
    { timeoutMs: 5000 },
  );
  await ctx.output.writeJson("results.json", { results, replay, tampered });
  return {
    workers: Object.keys(results).sort(),
    sums: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.sum])),
    replay: replay.refused,
    tampered: tampered.refused,
  };
});
