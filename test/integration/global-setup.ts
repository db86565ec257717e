/**
 * Integration prerequisites: a Docker engine, the local Redis, and the images. scripts/setup.sh
 * (run by `npm test`) provides them; this checks, builds the images once, and says what is missing.
 */
import { connect } from "node:net";
import { assertDockerReachable, dockerClient, ensureImages } from "../../runner/index.js";

function redisAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port: 6379 });
    s.setTimeout(2000, () => (s.destroy(), resolve(false)));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => (s.destroy(), resolve(d.toString().startsWith("+PONG"))));
    s.on("error", () => resolve(false));
  });
}

export default async function setup(): Promise<void> {
  await assertDockerReachable(dockerClient()).catch((err: Error) => {
    throw new Error(`integration tests need a Docker engine: ${err.message}\nrun: bash scripts/setup.sh`);
  });
  if (!(await redisAnswers())) throw new Error("integration tests need Redis on 127.0.0.1:6379; run: bash scripts/brokers.sh start redis");
  await ensureImages(dockerClient());
}
