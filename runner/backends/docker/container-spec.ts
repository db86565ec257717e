/**
 * The Docker create-specs for an agent's containers. Pure functions: every hardening flag is decided
 * here and checked by unit tests.
 *
 * agent: non-root, no capabilities, no-new-privileges, read-only root filesystem, /workspace
 *        read-only, /output a tmpfs volume of the policy's size and entry count (run/output-volume.ts):
 *        its own, when its container outlives the agent (a sandbox's init holds it until the runner
 *        copied /output out), else the output keeper's. Its network is one of:
 *        - "none" when the policy disables the network;
 *        - gated in its own namespace on the airlock bridge (images airlock built: a "sandbox",
 *          backends/docker/sandbox/): the container starts /opt/airlock/init as root with
 *          CAP_NET_ADMIN (and the caps to hand over a plain uid), which denies every packet, starts
 *          the runtime on standby (`cmd`) as uid:gid, and later applies the run's rules and drops
 *          NET_ADMIN before any agent code exists; the agent's command line and variables come on
 *          stdin (images/agent/airlock-init.sh);
 *        - joined to a gate container's namespace (any other image, derived from ours or not: its
 *          own init, if any, never runs with a capability).
 * gate:  owns a network namespace on the airlock bridge for an agent in another image (or one that
 *        joins a gate kept ready); root with CAP_NET_ADMIN/NET_RAW (and the caps to drop
 *        privileges), applies the rules, then drops every capability and holds the namespace — and an
 *        /output volume of the default limits, which a run with those limits uses (VolumesFrom).
 */
import { TRUST_MOUNT } from "../../run/https-trust.js";
import { REFUSALS_DIR } from "../../../agent-runtime/protocol.js";
import type Docker from "dockerode";
import type { AgentUser } from "../../run/output.js";
import { agentMemoryBytes, outputTmpfsOptions, type OutputLimits } from "../../run/output-volume.js";

export const AGENT_TMPFS = "rw,nosuid,nodev,size=64m,mode=1777";

/** Kernel settings of a gated network namespace. */
export const GATED_SYSCTLS: Record<string, string> = {
  // Lets the DNAT of 127.0.0.1:PORT leave through eth0 towards the host.
  "net.ipv4.conf.all.route_localnet": "1",
  "net.ipv6.conf.all.disable_ipv6": "1",
  "net.ipv6.conf.default.disable_ipv6": "1",
  // No unprivileged ICMP sockets (Docker opens them to every group by default).
  "net.ipv4.ping_group_range": "1 0",
};

/** What the in-container init needs (NET_RAW: the x_tables backend talks to the kernel over a raw socket); it keeps only SETUID/SETGID/SETPCAP/KILL once the rules are in force. */
export const INIT_CAPS = ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID", "SETPCAP", "KILL"];
export const AGENT_INIT = "/opt/airlock/init";

export type AgentNetwork =
  | { mode: "none" }
  /** Own namespace on `network`, gated by airlock's init (only in images airlock built itself). */
  | { mode: "gated"; network: string }
  /** Join a gate container's namespace. */
  | { mode: "gate-container"; gateId: string };

export interface GateSpecInput {
  name: string;
  image: string;
  network: string;
  /** A gate that gets no rules within this many seconds exits (and is removed by the engine). */
  idleSeconds: number;
  labels: Record<string, string>;
  /**
   * An /output volume the gate holds for the agent that joins it (the agent's container ends with the
   * agent; the gate outlives it until the runner copied /output out): sized for the policy's default
   * limits, so that most runs need no output keeper of their own.
   */
  output: { limits: OutputLimits; user: AgentUser };
}

export function gateSpec(input: GateSpecInput): Docker.ContainerCreateOptions {
  return {
    name: input.name,
    Image: input.image,
    Env: [`AIRLOCK_GATE_IDLE_SECONDS=${input.idleSeconds}`],
    Labels: input.labels,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: {
      NetworkMode: input.network,
      AutoRemove: true,
      Mounts: [outputVolumeMount(input.output.limits, input.output.user, input.labels)],
      CapDrop: ["ALL"],
      // NET_RAW: the legacy (x_tables) backend, a few ms where nf_tables takes tens. All dropped before "ready".
      CapAdd: ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID", "SETPCAP"],
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: true,
      Tmpfs: { "/run": "rw,nosuid,nodev,noexec,size=1m", "/tmp": "rw,nosuid,nodev,noexec,size=1m" },
      Sysctls: GATED_SYSCTLS,
      Memory: 32 * 1024 * 1024,
      MemorySwap: 32 * 1024 * 1024,
      PidsLimit: 16,
      LogConfig: { Type: "none", Config: {} },
    } as Docker.HostConfig,
  };
}

export interface AgentSpecInput {
  name: string;
  image: string;
  network: AgentNetwork;
  user: AgentUser;
  env: string[];
  /** Replace the image's entrypoint (undefined: keep it, as `docker run IMAGE CMD` does). Not for a gated sandbox. */
  entrypoint?: string[];
  /** The command; for a gated sandbox, the runtime its init starts on standby (may be empty). */
  cmd: string[];
  /** Binds for /workspace (the folder read-only and its hidden secrets), or none. */
  workspaceBinds: string[];
  /** /output: a tmpfs volume of the container's own, or the output keeper's (by container name or ID). */
  output: { limits: OutputLimits; keeper?: string };
  /** Folder with the bundled agent (mounted at /opt/agent/run), or undefined for a command. */
  bundleDir?: string;
  hostsFile: string;
  resolvConf: string;
  /** The trust files for HTTPS the gate terminates (mounted read-only at /etc/airlock), when the run has them. */
  trustDir?: string;
  /** The run's refusals so far, which the runner rewrites while the agent runs (mounted read-only at /run/airlock). */
  refusalsDir?: string;
  memoryBytes: number;
  cpus: number;
  pids: number;
  /** Largest file the agent may write (RLIMIT_FSIZE). */
  maxFileBytes: number;
  labels: Record<string, string>;
}

export function agentSpec(input: AgentSpecInput): Docker.ContainerCreateOptions {
  const binds = [
    ...input.workspaceBinds,
    `${input.hostsFile}:/etc/hosts:ro`,
    `${input.resolvConf}:/etc/resolv.conf:ro`,
  ];
  if (input.bundleDir) binds.push(`${input.bundleDir}:/opt/agent/run:ro`);
  if (input.trustDir) binds.push(`${input.trustDir}:${TRUST_MOUNT}:ro`);
  if (input.refusalsDir) binds.push(`${input.refusalsDir}:${REFUSALS_DIR}:ro`);
  const net = input.network;
  const gated = net.mode === "gated";
  return {
    name: input.name,
    Image: input.image,
    // The init takes the uid:gid from its environment and drops to it before the runtime starts.
    ...(gated
      ? { Entrypoint: [AGENT_INIT], Cmd: input.cmd, User: "0:0" }
      : {
          ...(input.entrypoint ? { Entrypoint: input.entrypoint } : {}),
          Cmd: input.cmd,
          User: `${input.user.uid}:${input.user.gid}`,
        }),
    Env: input.env,
    WorkingDir: "/workspace",
    Labels: input.labels,
    AttachStdout: true,
    AttachStderr: true,
    // The init reads its rules on stdin; the agent's stdin is /dev/null.
    AttachStdin: gated,
    OpenStdin: gated,
    StdinOnce: gated,
    Tty: false,
    HostConfig: {
      NetworkMode: net.mode === "none" ? "none" : net.mode === "gated" ? net.network : `container:${net.gateId}`,
      Binds: binds,
      ...(input.output.keeper
        ? { VolumesFrom: [`${input.output.keeper}:rw`] }
        : { Mounts: [outputVolumeMount(input.output.limits, input.user, input.labels)] }),
      CapDrop: ["ALL"],
      ...(gated ? { CapAdd: INIT_CAPS, Sysctls: GATED_SYSCTLS } : {}),
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": AGENT_TMPFS },
      // What /output holds is in memory, charged to this container: on top of the policy's memory.
      Memory: agentMemoryBytes(input.memoryBytes, input.output.limits),
      MemorySwap: agentMemoryBytes(input.memoryBytes, input.output.limits),
      NanoCpus: Math.round(input.cpus * 1e9),
      // The gated init's tini and supervisor are processes of their own.
      PidsLimit: input.pids + (gated ? 2 : 0),
      Ulimits: [{ Name: "fsize", Soft: input.maxFileBytes, Hard: input.maxFileBytes }],
      // Docker's init would keep the init's capabilities for the whole run; the gated init brings its own (tini, without NET_ADMIN).
      Init: !gated,
      IpcMode: "private",
      Privileged: false,
      LogConfig: { Type: "none", Config: {} },
    } as Docker.HostConfig,
  };
}

export interface KeeperSpecInput {
  name: string;
  /** airlock's gate image (it has `sleep`). */
  image: string;
  user: AgentUser;
  limits: OutputLimits;
  holdSeconds: number;
  labels: Record<string, string>;
}

/**
 * The output keeper: for an agent whose container ends with it (any image airlock did not build, or
 * a run without network), a container that owns the run's /output volume and holds it mounted until
 * the runner copied it out. No network, no capability, no writable root, nothing but `sleep`.
 */
export function keeperSpec(input: KeeperSpecInput): Docker.ContainerCreateOptions {
  return {
    name: input.name,
    Image: input.image,
    Entrypoint: ["sleep"],
    Cmd: [String(Math.max(1, input.holdSeconds))],
    User: `${input.user.uid}:${input.user.gid}`,
    Labels: input.labels,
    HostConfig: {
      NetworkMode: "none",
      Mounts: [outputVolumeMount(input.limits, input.user, input.labels)],
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: true,
      Memory: 16 * 1024 * 1024,
      MemorySwap: 16 * 1024 * 1024,
      PidsLimit: 4,
      IpcMode: "private",
      LogConfig: { Type: "none", Config: {} },
    } as Docker.HostConfig,
  };
}

/** /output as an anonymous tmpfs volume (the local driver mounts it; it is removed with its container). */
export function outputVolumeMount(
  limits: OutputLimits,
  user: AgentUser,
  labels: Record<string, string>,
): Docker.MountSettings {
  return {
    Type: "volume",
    Target: "/output",
    VolumeOptions: {
      Labels: labels,
      DriverConfig: { Name: "local", Options: { type: "tmpfs", device: "tmpfs", o: outputTmpfsOptions(limits, user) } },
    },
  } as unknown as Docker.MountSettings;
}
