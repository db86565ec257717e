/**
 * Starting the gate container and waiting until its rules are in force.
 */
import type Docker from "dockerode";
import { PassThrough } from "node:stream";
import { GateError } from "../errors.js";

export interface StartedGate {
  container: Docker.Container;
  id: string;
  /** The agent's address on the airlock bridge. */
  ip: string;
}

/** Create and start the gate; resolve once it printed "ready", reject with its own words if it failed. */
export async function startGate(docker: Docker, spec: Docker.ContainerCreateOptions, networkName: string, timeoutMs = 30_000): Promise<StartedGate> {
  const container = await docker.createContainer(spec);
  const out = new PassThrough();
  let text = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new GateError(`the egress gate did not report ready within ${timeoutMs} ms`, "check `docker logs` of the gate container and that the engine supports iptables in containers")), timeoutMs);
    out.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("airlock-gate: ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    out.on("end", () => {
      clearTimeout(timer);
      reject(new GateError(`the egress gate failed before the agent started: ${text.trim() || "no output"}`, "the host kernel must support iptables (nf_tables) inside containers"));
    });
  });
  ready.catch(() => {});
  const stream = await container.attach({ stream: true, stdout: true, stderr: true });
  docker.modem.demuxStream(stream, out, out);
  stream.on("end", () => out.end());
  try {
    await container.start();
    await ready;
    const info = await container.inspect();
    const ip = info.NetworkSettings.Networks[networkName]?.IPAddress;
    if (!ip) throw new GateError(`the gate container has no address on network ${networkName}`);
    return { container, id: container.id, ip };
  } catch (err) {
    (stream as unknown as { destroy?: () => void }).destroy?.();
    await container.remove({ force: true }).catch(() => {});
    throw err;
  } finally {
    // We only needed the "ready" line.
    (stream as unknown as { destroy?: () => void }).destroy?.();
  }
}
