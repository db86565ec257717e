/**
 * A short command in a container with nothing: no network, no capabilities, a read-only root, a
 * nobody uid, small limits. For what airlock asks an image it built (its Python version, whether an
 * agent compiles with the image's interpreter) before an agent runs. Labelled like every container
 * airlock creates, and removed whatever happens.
 */
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import type Docker from "dockerode";
import { withTimeout } from "../../../util/with-timeout.js";
import { runLabels } from "../../../labels.js";
import { startReplacingLost } from "./lost-start.js";

export interface OneOffResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runOneOff(
  docker: Docker,
  input: { image: string; cmd: string[]; binds?: string[]; timeoutMs?: number },
): Promise<OneOffResult> {
  return startReplacingLost(() => runOnce(docker, input));
}

async function runOnce(
  docker: Docker,
  input: { image: string; cmd: string[]; binds?: string[]; timeoutMs?: number },
): Promise<OneOffResult> {
  const timeoutMs = input.timeoutMs ?? 30_000;
  const runId = `check-${randomBytes(4).toString("hex")}`;
  const container = await docker.createContainer({
    Image: input.image,
    Entrypoint: [],
    Cmd: input.cmd,
    User: "65534:65534",
    WorkingDir: "/",
    Labels: runLabels(runId, "check", "check", Date.now() + timeoutMs + 60_000),
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: {
      NetworkMode: "none",
      Binds: input.binds ?? [],
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": "rw,nosuid,nodev,size=16m" },
      Memory: 256 * 1024 * 1024,
      MemorySwap: 256 * 1024 * 1024,
      PidsLimit: 64,
      LogConfig: { Type: "none", Config: {} },
    } as Docker.HostConfig,
  });
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const outPipe = new PassThrough().on("data", (b: Buffer) => out.push(b));
    const errPipe = new PassThrough().on("data", (b: Buffer) => err.push(b));
    docker.modem.demuxStream(stream, outPipe, errPipe);
    const ended = new Promise<void>((res) => {
      stream.on("end", res);
      stream.on("close", res);
    });
    const waited = container.wait({ condition: "next-exit" }) as Promise<{ StatusCode?: number }>;
    await container.start();
    const { StatusCode } = await withTimeout(
      waited,
      timeoutMs,
      `a check in ${input.image} did not finish within ${timeoutMs / 1000} s`,
    );
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000).unref())]);
    return { code: StatusCode ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  } finally {
    // The one-off container is labelled; one that resists removal is removed by the orphan sweep.
    await container.remove({ force: true }).catch(() => {});
  }
}
