/** Receives on its inbox: every message once (a duplicate is acknowledged, not handled again), none that expired. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const presence = ctx.bus.presence();
  await presence.start();
  const inbox = ctx.bus.inbox<{ text: string }>();
  const handled: string[] = [];
  // After bye it stays a moment, so that the last receipt is on its way while it is still there.
  const leave = new AbortController();
  await inbox.receive(
    (m) => {
      handled.push(m.body.text);
      if (m.body.text === "bye") setTimeout(() => leave.abort(), 1500);
      ctx.log(`${m.from} [thread ${m.threadId.slice(0, 8)}]: ${m.body.text}`);
      return m.kind === "request" ? { text: m.body.text.toUpperCase() } : undefined;
    },
    { signal: AbortSignal.any([ctx.signal, leave.signal]), onReady: () => ctx.ready() },
  );
  await ctx.output.writeJson("inbox.json", { handled, log: inbox.log });
  return { handled: handled.length, statuses: inbox.log.map((l) => l.status) };
});
