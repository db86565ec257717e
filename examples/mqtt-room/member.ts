/** A room member (bob and carol run this file): answers the host's hello; bob whispers to carol, who answers him. */
import { defineAgent, type RoomMessage } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const me = ctx.env.AIRLOCK_BUS_AGENT!;
  const room = ctx.bus.room<string>();
  await room.join();
  ctx.ready();
  const seen: RoomMessage<string>[] = [];
  const next = async (want: (m: RoomMessage<string>) => boolean) => {
    for (;;) {
      const m = await room.next(30_000);
      seen.push(m);
      if (want(m)) return m;
    }
  };
  const hello = await next((m) => m.from === "alice" && m.to === "all");
  ctx.log(`${hello.from} to ${hello.to}: ${hello.body}`);
  await room.reply(hello, `hi alice, ${me} here`);
  if (me === "bob") {
    const whisper = await room.send("psst, carol: the meeting moved to 3", { to: "carol" });
    const answer = await next((m) => m.inReplyTo === whisper.id);
    ctx.log(`carol answered: ${answer.body}`);
  } else {
    const whisper = await next((m) => m.from === "bob" && m.to === me);
    ctx.log(`bob whispered: ${whisper.body}`);
    await room.reply(whisper, "thanks bob, see you at 3");
  }
  await room.leave();
  await ctx.output.writeJson("transcript.json", seen);
  return { received: seen.map((m) => `${m.from}→${m.to}${m.inReplyTo ? " (reply)" : ""}`) };
});
