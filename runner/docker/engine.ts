/**
 * The few engine operations an agent run needs, behind one small interface: create, attach, start,
 * wait, kill, remove, inspect, ping. The Docker implementation wraps dockerode; unit tests use a fake
 * engine to drive the run pipeline through timeouts, cancels and failures without a daemon.
 */
import type { Duplex, Writable } from "node:stream";
import type Docker from "dockerode";
import { engineAddress } from "./client.js";

export interface ContainerState {
  running: boolean;
  exitCode: number;
  oomKilled: boolean;
  /** The container's init process as the host sees it (0 when not running). */
  pid: number;
  /** Address and MAC on a network, by network name. */
  networks: Record<string, { ip: string; mac: string }>;
}

export interface EngineContainer {
  readonly id: string;
  /** The container's multiplexed stdout/stderr (and stdin when asked for). */
  attach(options: { stdin: boolean }): Promise<Duplex>;
  start(): Promise<void>;
  /** Resolves with the exit code once the container exits ("next-exit" also counts a container not started yet as running). */
  wait(condition: "next-exit" | "not-running"): Promise<{ StatusCode?: number }>;
  kill(signal: "SIGTERM" | "SIGKILL" | "SIGUSR1"): Promise<void>;
  remove(): Promise<void>;
  inspect(): Promise<ContainerState>;
  rename(name: string): Promise<void>;
}

export interface Engine {
  /** Where the engine is (socket path or host:port), for messages. */
  readonly address: string;
  createContainer(spec: Docker.ContainerCreateOptions): Promise<EngineContainer>;
  container(id: string): EngineContainer;
  ping(): Promise<void>;
  /** Split a multiplexed attach stream into stdout and stderr. */
  demux(stream: Duplex, stdout: Writable, stderr: Writable): void;
}

export function dockerEngine(docker: Docker): Engine {
  const wrap = (c: Docker.Container): EngineContainer => ({
    id: c.id,
    attach: async ({ stdin }) => (await c.attach({ stream: true, stdout: true, stderr: true, ...(stdin ? { stdin: true, hijack: true } : {}) })) as unknown as Duplex,
    start: async () => void (await c.start()),
    wait: (condition) => c.wait({ condition }) as Promise<{ StatusCode?: number }>,
    kill: async (signal) => void (await c.kill({ signal })),
    remove: async () => void (await c.remove({ force: true })),
    rename: async (name) => void (await c.rename({ name })),
    inspect: async () => {
      const info = await c.inspect();
      const networks: ContainerState["networks"] = {};
      for (const [name, n] of Object.entries(info.NetworkSettings.Networks ?? {})) networks[name] = { ip: n.IPAddress, mac: n.MacAddress };
      return { running: info.State.Running, exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled, pid: info.State.Pid, networks };
    },
  });
  return {
    address: engineAddress(docker),
    createContainer: async (spec) => wrap(await docker.createContainer(spec)),
    container: (id) => wrap(docker.getContainer(id)),
    ping: async () => void (await docker.ping()),
    demux: (stream, stdout, stderr) => docker.modem.demuxStream(stream, stdout, stderr),
  };
}
