/**
 * What every bench section shares: its settings (BENCH_REPS, BENCH_MESSAGES), the engine, a log
 * line, temporary folders, the plain-Docker baselines, and settling between measurements.
 */
import { chmod, mkdtemp } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { execa } from "execa";
import type { Policy } from "../runner/index.js";
import { dockerClient } from "../runner/internal.js";
import { localBrokersFile } from "../runner/bus/rights.js";
import { defaultRunner } from "../runner/runner.js";
import { packagePath } from "../runner/paths.js";

export const AGENTS = packagePath("bench", "agents");
export const REPS = Number(process.env.BENCH_REPS ?? 5);
export const N_MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
export const docker = dockerClient();

export const log = (...a: unknown[]) => console.error("[bench]", ...a);

export async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "airlock-bench-"));
  await chmod(d, 0o755);
  return d;
}

export async function plainDockerRun(
  image: string,
  script = "0",
  interpreter: "node" | "python3" = "node",
): Promise<{ ms: number; stdout: string }> {
  const t = performance.now();
  const r = await execa("docker", [
    "run",
    "--rm",
    "--entrypoint",
    interpreter,
    image,
    interpreter === "node" ? "-e" : "-c",
    script,
  ]);
  return { ms: performance.now() - t, stdout: r.stdout };
}

/**
 * The baseline of a gated pair: the same bundle in the same image, with the policy's memory and cpu
 * limits (a memory limit alone costs Redis pub/sub about 8% on this machine, gate or no gate), and an
 * unrestricted network: the host's own, where the agents' localhost endpoints simply work.
 */
export async function runUngated(
  image: string,
  bundleDir: string,
  env: Record<string, string>,
  onLine: (line: string) => void,
  resources: Policy["resources"],
  network = "host",
): Promise<void> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: ["/opt/agent/run/agent.mjs"],
    User: "10001:10001",
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    AttachStdout: true,
    AttachStderr: true,
    Labels: { "dev.airlock.bench": "baseline" },
    HostConfig: {
      NetworkMode: network,
      Binds: [`${bundleDir}:/opt/agent/run:ro`],
      Init: true,
      Memory: resources.memoryBytes,
      MemorySwap: resources.memoryBytes,
      NanoCpus: Math.round(resources.cpus * 1e9),
    },
  });
  const stream = await container.attach({ stream: true, stdout: true, stderr: true });
  const out = new PassThrough();
  let partial = "";
  out.on("data", (d: Buffer) => {
    const text = partial + d.toString();
    const lines = text.split("\n");
    partial = lines.pop()!;
    lines.forEach(onLine);
  });
  docker.modem.demuxStream(stream, out, out);
  const exited = container.wait({ condition: "next-exit" });
  await container.start();
  await exited;
  await container.remove({ force: true });
}

/** Between measurements: let airlock's background work (stopping gates, warming the next) finish, so it neither helps nor hurts the next figure. */
export async function settle(): Promise<void> {
  await Promise.all([defaultRunner().containersRemoved(), defaultRunner().gatesIdle()]);
}

export type LocalAdmin = { host: string; port: number; user: string; password: string };

/** The admin entry `airlock brokers start` wrote for a local broker. */
export function localAdmin(kind: string): LocalAdmin {
  return (JSON.parse(readFileSync(localBrokersFile(), "utf8")) as Record<string, LocalAdmin>)[kind]!;
}

export async function freePort(host: string): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = createServer().once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
