/** Receives on its inbox: every message once (a duplicate is acknowledged, not handled again), none that expired. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const presence = ctx.bus.presence();
  await presence.start();
  const inbox = ctx.bus.inbox<{ text: string }>();
  const handled: string[] = [];
  // After bye, stay until the sender has left (it says goodbye on presence when it ends), so that
  // its last receipt reaches it while this agent is still there.
  const leave = new AbortController();
  let bye = false;
  const watch = setInterval(() => {
    if (bye && !presence.online().some((m) => m.agent === "sender")) leave.abort();
  }, 100);
  await inbox.receive(
    (m) => {
      handled.push(m.body.text);
      if (m.body.text === "bye") bye = true;
      ctx.log(`${m.from} [thread ${m.threadId.slice(0, 8)}]: ${m.body.text}`);
      return m.kind === "request" ? { text: m.body.text.toUpperCase() } : undefined;
    },
    { signal: AbortSignal.any([ctx.signal, leave.signal]), onReady: () => ctx.ready() },
  );
  clearInterval(watch);
  await ctx.output.writeJson("inbox.json", { handled, log: inbox.log });
  return { handled: handled.length, statuses: inbox.log.map((l) => l.status) };
});
