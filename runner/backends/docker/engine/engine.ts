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
  paused: boolean;
  /** When the engine last started it. */
  startedAt: string;
  /** Processes run in it with `docker exec` (running or not). */
  execs: number;
  /** What the container runs and may do (image, command, environment, mounts, limits, privileges), as one string: equal while nobody changed it. */
  config: string;
}

export interface EngineContainer {
  readonly id: string;
  /** The container's multiplexed stdout/stderr (and stdin when asked for). */
  attach(options: { stdin: boolean }): Promise<Duplex>;
  start(): Promise<void>;
  /** Resolves with the exit code once the container exits ("next-exit" also counts a container not started yet as running). */
  wait(condition: "next-exit" | "not-running"): Promise<{ StatusCode?: number }>;
  kill(signal: "SIGTERM" | "SIGKILL" | "SIGUSR1" | "SIGUSR2"): Promise<void>;
  /** Remove it (forced), with its anonymous volumes (its /output). */
  remove(): Promise<void>;
  /** A tar of `path` in the container (a running one sees its volumes). */
  archive(path: string): Promise<NodeJS.ReadableStream>;
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
  /**
   * What happens to containers with these labels (create, attach, start, exec_create, update, ...),
   * as the engine reports it, until the returned function is called.
   */
  watch?(labels: string[], onEvent: (event: { id: string; action: string }) => void): Promise<() => void>;
}

export function dockerEngine(docker: Docker): Engine {
  const wrap = (c: Docker.Container): EngineContainer => ({
    id: c.id,
    attach: async ({ stdin }) =>
      (await c.attach({
        stream: true,
        stdout: true,
        stderr: true,
        ...(stdin ? { stdin: true, hijack: true } : {}),
      })) as unknown as Duplex,
    start: async () => void (await c.start()),
    wait: (condition) => c.wait({ condition }) as Promise<{ StatusCode?: number }>,
    kill: async (signal) => void (await c.kill({ signal })),
    remove: async () => void (await c.remove({ force: true, v: true })),
    archive: (path) => c.getArchive({ path }),
    rename: async (name) => void (await c.rename({ name })),
    inspect: async () => {
      const info = await c.inspect();
      const networks: ContainerState["networks"] = {};
      for (const [name, n] of Object.entries(info.NetworkSettings.Networks ?? {}))
        networks[name] = { ip: n.IPAddress, mac: n.MacAddress };
      const h = info.HostConfig as Docker.HostConfig & { Tmpfs?: unknown; Sysctls?: unknown };
      const config = JSON.stringify([
        info.Image,
        info.Path,
        info.Args,
        info.Config.Env,
        info.Config.User,
        h.Binds,
        h.Mounts,
        h.Tmpfs,
        h.NetworkMode,
        h.CapAdd,
        h.CapDrop,
        h.Privileged,
        h.SecurityOpt,
        h.ReadonlyRootfs,
        h.Devices,
        h.Sysctls,
        h.Memory,
        h.MemorySwap,
        h.NanoCpus,
        h.CpuQuota,
        h.PidsLimit,
        h.Ulimits,
        h.PidMode,
        h.IpcMode,
      ]);
      return {
        running: info.State.Running,
        exitCode: info.State.ExitCode,
        oomKilled: info.State.OOMKilled,
        pid: info.State.Pid,
        networks,
        paused: info.State.Paused,
        startedAt: info.State.StartedAt,
        execs: (info.ExecIDs ?? []).length,
        config,
      };
    },
  });
  return {
    address: engineAddress(docker),
    createContainer: async (spec) => wrap(await docker.createContainer(spec)),
    container: (id) => wrap(docker.getContainer(id)),
    ping: async () => void (await docker.ping()),
    demux: (stream, stdout, stderr) => docker.modem.demuxStream(stream, stdout, stderr),
    watch: async (labels, onEvent) => {
      const stream = (await docker.getEvents({
        filters: { type: ["container"], label: labels },
      })) as unknown as NodeJS.ReadableStream & { destroy(): void };
      let partial = "";
      stream.on("data", (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          try {
            const e = JSON.parse(line) as { id?: string; Action?: string; Actor?: { ID?: string } };
            const id = e.Actor?.ID ?? e.id;
            // exec_create/exec_start carry the command after a colon: "exec_start: sh -c ..."
            if (id && e.Action) onEvent({ id, action: e.Action.split(":")[0]!.trim() });
          } catch {
            // not an event
          }
        }
      });
      stream.on("error", () => {});
      // Watching must not keep the runner's process alive.
      (stream as unknown as { socket?: { unref?: () => void } }).socket?.unref?.();
      return () => stream.destroy();
    },
  };
}
