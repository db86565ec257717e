/** Sends receipted messages: three, one twice (the duplicate is suppressed), one that expired on the way, a request, and bye. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const presence = ctx.bus.presence();
  await presence.start();
  const online = await presence.waitFor(["receiver"], { timeoutMs: 30_000 });
  ctx.log(`online: ${online.map((m) => m.agent).join(", ")}`);
  const inbox = ctx.bus.inbox<{ text: string }>();
  const thread = "planning";
  const receipts = [];
  for (const [i, text] of ["first", "second", "third"].entries())
    receipts.push(await inbox.send("receiver", { text }, { threadId: thread, idempotencyKey: `msg-${i}` }));
  // The same message again (a retry after a lost receipt, say): acknowledged, not handled twice.
  receipts.push(await inbox.send("receiver", { text: "second" }, { threadId: thread, idempotencyKey: "msg-1" }));
  // One that waited too long somewhere: it expired a second before it arrived.
  receipts.push(await inbox.send("receiver", { text: "stale news" }, { threadId: thread, ttlMs: -1000 }));
  const answer = await inbox.request<{ text: string }>("receiver", { text: "shout this" }, { threadId: thread });
  receipts.push(await inbox.send("receiver", { text: "bye" }, { threadId: thread }));
  for (const r of receipts) ctx.log(`receipt ${r.id.slice(0, 8)}: ${r.status}${r.reason ? ` (${r.reason})` : ""}`);
  await ctx.output.writeJson("receipts.json", { receipts, answer });
  return { receipts: receipts.map((r) => r.status), answer: answer.text };
});
