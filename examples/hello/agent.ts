/**
 * hello: writes to the local Redis through the gate, then shows that a port the policy does not
 * list is refused. Run it with:
 *
 *   npx airlock run examples/hello/agent.ts --policy policies/hello.yaml --output out/hello
 */
import { connect } from "node:net";
import Redis from "ioredis";
import { defineAgent } from "airlock/agent";

/** Try a TCP connection; resolve with "connected" or the error code. */
function probe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve("TIMEOUT");
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

export default defineAgent(async (ctx) => {
  ctx.log(ctx.env.GREETING);

  const redis = new Redis(ctx.env.REDIS_URL ?? "redis://localhost:6379", {
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    enableReadyCheck: false,
  });
  const key = `airlock:hello:${ctx.env.AIRLOCK_RUN_ID}`;
  await redis.set(key, ctx.env.GREETING ?? "hello", "EX", 60);
  const echoed = await redis.get(key);
  const pong = await redis.ping();
  await redis.quit();
  ctx.log(`redis (allowed, localhost:6379): PING -> ${pong}, read back "${echoed}"`);

  const unlisted = await probe("127.0.0.1", 6380);
  ctx.log(`unlisted port (localhost:6380): ${unlisted}`);

  const report = { redis: { pong, echoed }, unlistedPort: unlisted };
  await ctx.output.writeJson("hello.json", report);
  return report;
});
