/**
 * The Docker create-specs for an agent's two containers. Pure functions: every hardening flag is
 * decided here and checked by unit tests.
 *
 * gate:  owns the network namespace on the airlock bridge; root with CAP_NET_ADMIN (and the caps to drop
 *        privileges), applies the
 *        rules, then drops every capability and holds the namespace.
 * agent: joins the gate's namespace (or has no network at all); non-root, no capabilities,
 *        no-new-privileges, read-only root filesystem, /workspace read-only, /output read-write.
 */
import type Docker from "dockerode";
import type { AgentUser } from "./output.js";

export const AGENT_TMPFS = "rw,nosuid,nodev,size=64m,mode=1777";

export interface GateSpecInput {
  name: string;
  image: string;
  network: string;
  /** A gate that gets no rules within this many seconds exits (and is removed by the engine). */
  idleSeconds: number;
  labels: Record<string, string>;
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
      CapDrop: ["ALL"],
      CapAdd: ["NET_ADMIN", "SETUID", "SETGID", "SETPCAP"],
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: true,
      Tmpfs: { "/run": "rw,nosuid,nodev,noexec,size=1m", "/tmp": "rw,nosuid,nodev,noexec,size=1m" },
      Sysctls: {
        // Lets the DNAT of 127.0.0.1:PORT leave through eth0 towards the host forwarder.
        "net.ipv4.conf.all.route_localnet": "1",
        "net.ipv6.conf.all.disable_ipv6": "1",
        "net.ipv6.conf.default.disable_ipv6": "1",
        // No unprivileged ICMP sockets (Docker opens them to every group by default).
        "net.ipv4.ping_group_range": "1 0",
      },
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
  /** `container:<gate id>`, or "none" when the policy disables the network. */
  networkMode: string;
  user: AgentUser;
  env: string[];
  cmd: string[];
  /** Replace the image's entrypoint (to run a command in the agent image, or in another image). */
  entrypoint?: string[];
  workingDir: string;
  outputDir: string;
  /** Folder with the bundled agent (mounted at /opt/agent/run), or undefined for a command. */
  bundleDir?: string;
  hostsFile: string;
  resolvConf: string;
  memoryBytes: number;
  cpus: number;
  pids: number;
  /** Largest file the agent may write (RLIMIT_FSIZE). */
  maxFileBytes: number;
  labels: Record<string, string>;
}

export function agentSpec(input: AgentSpecInput): Docker.ContainerCreateOptions {
  const binds = [
    `${input.workingDir}:/workspace:ro`,
    `${input.outputDir}:/output:rw`,
    `${input.hostsFile}:/etc/hosts:ro`,
    `${input.resolvConf}:/etc/resolv.conf:ro`,
  ];
  if (input.bundleDir) binds.push(`${input.bundleDir}:/opt/agent/run:ro`);
  return {
    name: input.name,
    Image: input.image,
    Cmd: input.cmd,
    ...(input.entrypoint ? { Entrypoint: input.entrypoint } : {}),
    User: `${input.user.uid}:${input.user.gid}`,
    Env: input.env,
    WorkingDir: "/workspace",
    Labels: input.labels,
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: false,
    Tty: false,
    HostConfig: {
      NetworkMode: input.networkMode,
      Binds: binds,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": AGENT_TMPFS },
      Memory: input.memoryBytes,
      MemorySwap: input.memoryBytes,
      NanoCpus: Math.round(input.cpus * 1e9),
      PidsLimit: input.pids,
      Ulimits: [{ Name: "fsize", Soft: input.maxFileBytes, Hard: input.maxFileBytes }],
      Init: true,
      IpcMode: "private",
      Privileged: false,
      LogConfig: { Type: "none", Config: {} },
    } as Docker.HostConfig,
  };
}
