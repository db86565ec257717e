/** A worker: announces its public keys, opens the sealed tasks it receives, answers sealed, and refuses what does not open. */
import { defineAgent, SealedMessageError, type PublicKeys, type SealedMessage } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const keys = ctx.bus.keyring();
  const presence = ctx.bus.presence<PublicKeys>();
  await presence.start(keys.publicKeys());
  // The coordinator's keys come with its heartbeat.
  const [coordinator] = (await presence.waitFor(["coordinator"], { timeoutMs: 30_000 })).filter((m) => m.agent === "coordinator");
  keys.trust(coordinator!.meta!);
  const inbox = ctx.bus.inbox<SealedMessage>();
  const refused: string[] = [];
  await inbox.receive(
    (m) => {
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
    { limit: ctx.name === "worker-1" ? 3 : 1, signal: ctx.signal },
  );
  return { refused };
});
