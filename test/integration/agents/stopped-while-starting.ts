/**
 * Stopped while it is still starting its consumers (they are opened at ready, as a consumer's are)
 * and again once the stop is there: every consumer must end at once and ctx.stopped() resolve, so
 * the agent still returns by itself before the SIGKILL. What each took comes back as its result.
 */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const run = ctx.env.AIRLOCK_RUN_ID ?? "default";
  const took: Record<string, number> = {};
  const timed = async (name: string, start: () => Promise<unknown>) => {
    const t = performance.now();
    await start();
    took[name] = Math.round(performance.now() - t);
  };
  const consumers = (when: string) => [
    timed(`${when} workQueue`, () => ctx.bus.workQueue(`stop-${run}`).consume(() => {}, { signal: ctx.signal })),
    timed(`${when} stream`, () =>
      ctx.bus.stream(`stop-${run}`).consume(() => {}, { groupId: `stop-${run}`, signal: ctx.signal }),
    ),
    timed(`${when} inbox`, () => ctx.bus.inbox().receive(() => {}, { signal: ctx.signal })),
    timed(`${when} tasks`, () => ctx.bus.discovery().serveTasks(() => {}, { signal: ctx.signal })),
    timed(`${when} stopped`, () => ctx.stopped()),
  ];
  ctx.ready();
  const during = consumers("during");
  while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 10));
  await Promise.all([...during, ...consumers("after")]);
  return took;
});
