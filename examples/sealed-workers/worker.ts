/** A worker: announces its public keys, opens the sealed tasks it receives, answers sealed, and refuses what does not open. */
import { defineAgent, SealedMessageError, type PublicKeys, type SealedMessage } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const keys = ctx.bus.keyring();
  const presence = ctx.bus.presence<PublicKeys>();
  const inbox = ctx.bus.inbox<SealedMessage>();
  // Listening on the inbox first, then announcing the keys: whoever sees them can send at once.
  let announced: Promise<void> = Promise.resolve();
  // A sender's keys come with its heartbeat.
  const trustSender = async (agent: string) => {
    if (keys.knows(agent)) return;
    await announced;
    const member = (await presence.waitFor([agent], { timeoutMs: 30_000 })).find((m) => m.agent === agent);
    if (member?.meta) keys.trust(member.meta);
  };
  const refused: string[] = [];
  // After its last task, a worker stays a moment before it leaves, so that its last answer is on its
  // way while it is still there (its broker identity goes when it does).
  const expected = ctx.name === "worker-1" ? 3 : 1;
  const leave = new AbortController();
  let handled = 0;
  await inbox.receive(
    async (m) => {
      if (++handled >= expected) setTimeout(() => leave.abort(), 1500);
      await trustSender(m.from);
      try {
        const task = keys.open<{ secret: string; numbers: number[] }>(m.body);
        ctx.log(`opened a task from ${m.from}: ${task.numbers.length} numbers`);
        return keys.seal(m.from, { secret: task.secret.toUpperCase(), sum: task.numbers.reduce((a, b) => a + b, 0) });
      } catch (err) {
        if (!(err instanceof SealedMessageError)) throw err;
        refused.push(err.reason);
        ctx.log.warn(`refused a message from ${m.from}: ${err.reason}`);
        return { refused: err.reason };
      }
    },
    {
      signal: AbortSignal.any([ctx.signal, leave.signal]),
      onReady: () => void (announced = presence.start(keys.publicKeys())),
    },
  );
  return { refused };
});
