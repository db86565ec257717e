/**
 * Integration prerequisites: a Docker engine, the local Redis, RabbitMQ and Kafka, and the images. scripts/setup.sh
 * (run by `npm test`) provides them; this checks, builds the images once, and says what is missing.
 */
import { connect } from "node:net";
import { release } from "node:os";
import { assertDockerReachable, dockerClient, ensureImages } from "../../runner/internal.js";
import { renderSecurityDoc, resetReports } from "./security/report.js";

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.setTimeout(2000, () => (s.destroy(), resolve(false)));
    s.on("connect", () => (s.destroy(), resolve(true)));
    s.on("error", () => resolve(false));
  });
}

/** The engine, the brokers and the images are there (the images built once); the engine's version. */
export async function prerequisites(): Promise<{ version: string }> {
  const engine = await assertDockerReachable(dockerClient()).catch((err: Error) => {
    throw new Error(`integration tests need a Docker engine: ${err.message}\nrun: bash scripts/setup.sh`);
  });
  for (const [name, port] of [
    ["redis", 6379],
    ["rabbitmq", 5672],
    ["kafka", 9092],
  ] as const) {
    if (!(await answers(port)))
      throw new Error(
        `integration tests need ${name} on 127.0.0.1:${port}; run: bash scripts/brokers.sh start ${name}`,
      );
  }
  await ensureImages(dockerClient());
  return engine;
}

export default async function setup(): Promise<() => void> {
  const engine = await prerequisites();
  resetReports();
  // After the run: docs/SECURITY.md's table, from what the suites recorded (only when all of them ran).
  return () => {
    renderSecurityDoc({ docker: engine.version, kernel: release() });
  };
}
