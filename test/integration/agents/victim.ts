/** An agent of another airlock run: listens on a port and counts who reaches it. */
import { createServer } from "node:net";
import { networkInterfaces } from "node:os";
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  let hits = 0;
  const server = createServer((s) => {
    hits++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(7100, "0.0.0.0", r));
  const ip = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === "IPv4" && !i.internal)?.address;
  ctx.log(`LISTENING ${ip}:7100`);
  ctx.ready();
  await ctx.stopped();
  server.close();
  return { hits };
});
