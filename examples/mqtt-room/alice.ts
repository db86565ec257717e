/** The host: says hello to everyone once bob and carol are in the room, and collects their replies. */
import { defineAgent, type RoomMessage } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const room = ctx.bus.room<string>();
  await room.join();
  const hello = await room.send("hello everyone, welcome to the room", { qos: 1 });
  const replies: RoomMessage<string>[] = [];
  while (replies.length < 2) {
    const m = await room.next(30_000);
    if (m.inReplyTo === hello.id) replies.push(m), ctx.log(`${m.from} replied: ${m.body}`);
  }
  // Whatever bob and carol said to each other was for them: give it a moment to (not) arrive here.
  const overheard = await room.next(1000).then(
    () => 1,
    () => 0,
  );
  await room.leave();
  await ctx.output.writeJson("replies.json", replies);
  return { replies: replies.map((m) => m.from).sort(), overheard };
});
