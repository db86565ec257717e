import { READY_KEEPER_PREFIX } from "../../runner/backends/docker/output-keepers.js";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { chmod, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerClient } from "../../runner/internal.js";
import { ensureNetwork } from "../../runner/backends/docker/network.js";
import { LABEL } from "../../runner/labels.js";
import { WARM_GATE_PREFIX } from "../../runner/runner.js";
import { containersRemoved } from "../../runner/runner.js";
import { localBrokersFile } from "../../runner/bus/rights.js";

export const AGENTS = join(import.meta.dirname, "agents");

/** A fresh folder the sandbox user can read (mkdtemp makes 0700 folders). */
export async function tempDir(prefix = "airlock-it-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

/** The host's address on the airlock bridge (created by airlock; a legitimate test target). */
export async function bridgeGateway(): Promise<string> {
  return (await ensureNetwork(dockerClient())).gateway;
}

/** A TCP listener that counts every connection that reaches it. */
export interface Decoy {
  host: string;
  port: number;
  hits(): number;
  close(): Promise<void>;
}

export async function tcpDecoy(host: string, port = 0): Promise<Decoy> {
  let hits = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    hits++;
    sockets.add(s);
    // A prober that resets its side is not the decoy's problem.
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    s.end("DECOY\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    host,
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function udpDecoy(host: string, port = 0): Promise<Decoy> {
  let hits = 0;
  const socket: UdpSocket = createSocket("udp4");
  socket.on("message", () => hits++);
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, host, () => resolve());
  });
  return {
    host,
    port: socket.address().port,
    hits: () => hits,
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

/** airlock containers (or, on the kubernetes backend, Pods) that still exist for a run id (or for all runs); gates kept ready for the next run are not leftovers. */
export async function leftoverContainers(runId?: string): Promise<string[]> {
  // A finished run's containers are removed in the background, right after runAgent() returns.
  await containersRemoved();
  if (process.env.AIRLOCK_BACKEND === "kubernetes") return leftoverPods(runId);
  const filters = { label: [`${LABEL.managed}=true`, ...(runId ? [`${LABEL.run}=${runId}`] : [])] };
  const list = async () =>
    (await dockerClient().listContainers({ all: true, filters }))
      .map((c) => c.Names[0] ?? c.Id)
      .filter((n) => !n.startsWith(`/${WARM_GATE_PREFIX}`) && !n.startsWith(`/${READY_KEEPER_PREFIX}`));
  // A stopped gate is removed by the engine itself, a moment after the run returns.
  for (let i = 0; i < 30; i++) {
    const left = await list();
    if (left.every((n) => n.endsWith("-gate"))) {
      if (left.length === 0) return left;
      await new Promise((r) => setTimeout(r, 100));
    } else return left;
  }
  return list();
}

export type Probe =
  | { id: string; kind: "tcp"; host: string; port: number; send?: string }
  | { id: string; kind: "udp"; host: string; port: number }
  | { id: string; kind: "dns-lookup"; name: string }
  | { id: string; kind: "dns-query"; host: string; port: number };

/** An admin connection to airlock's local Redis, with the credentials `airlock brokers start` wrote. */
export async function localRedisAdmin(): Promise<import("ioredis").Redis> {
  const { Redis } = await import("ioredis");
  const a = localBrokerAdmin("redis");
  const r = new Redis({ host: a.host, port: a.port, username: a.user, password: a.password, enableReadyCheck: false });
  r.on("error", () => {});
  return r;
}

/** The admin entry `airlock brokers start` wrote for a local broker (admin.json). */
export function localBrokerAdmin<T = { host: string; port: number; user: string; password: string }>(kind: string): T {
  return (JSON.parse(readFileSync(localBrokersFile(), "utf8")) as Record<string, T>)[kind]!;
}

/** airlock's Pods that are not being deleted (a deleted Pod stays listed while the kubelet stops it). */
async function leftoverPods(runId?: string): Promise<string[]> {
  const { kubernetesBackend } = await import("../../runner/backends/kubernetes/index.js");
  const backend = kubernetesBackend();
  const labelSelector = ["dev.airlock.managed=true", ...(runId ? [`dev.airlock.run=${runId}`] : [])].join(",");
  const pods = await backend.client.core.listNamespacedPod({ namespace: backend.settings.namespace, labelSelector });
  return pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata!.name!);
}
