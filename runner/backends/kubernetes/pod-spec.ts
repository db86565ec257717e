/**
 * The Kubernetes objects of one agent run. Pure functions: every hardening field is decided here and
 * checked by unit tests (test/unit/kubernetes.test.ts).
 *
 * Pod `airlock-<run>`:
 *   init container airlock-gate  airlock's gate image, root with NET_ADMIN/NET_RAW only: loads the run's
 *                                rules into the Pod's network namespace, and exits once the runner
 *                                has read them back and released it. No agent container exists before.
 *   container agent              the agent: non-root, no capabilities, no privilege escalation,
 *                                read-only root, RuntimeDefault seccomp, the policy's memory and CPU,
 *                                /output and /tmp writable, the bundle and /workspace read-only.
 *   container airlock-keeper     airlock's gate image as the agent's uid, no capability: holds /output
 *                                (read-only) for the runner to read once the agent has exited (the
 *                                agent's own uid reads every file it wrote, also a 0600 one), and
 *                                signals the agent's processes when the runner stops it (the Pod
 *                                shares one process namespace, so the agent's main process is not
 *                                its namespace's init and SIGKILL reaches it).
 *   container airlock-report     airlock's gate image, uid 0 with no capability at all: the
 *                                denied-connection tables are kernel files only uid 0 may read;
 *                                and the runner writes the agent's refusals so far through it into
 *                                /run/airlock, which the agent mounts read-only.
 * The agent sees their processes, and can signal the keeper's (its own uid): it can only hurt its own
 * output that way; if it keeps the keeper from stopping it, the runner deletes the Pod.
 * No service-account token, no service links, no DNS (the policy's names are in the run's own
 * /etc/hosts), no ingress, egress only to the allowed endpoints (NetworkPolicy, where the cluster enforces it).
 * ConfigMap `airlock-<run>`: the rules, the agent's /etc/hosts and its files. Secret `airlock-<run>-env`: its environment.
 */
import { TRUST_FILES, TRUST_MOUNT } from "../../run/https-trust.js";
import { REFUSALS_DIR } from "../../../agent-runtime/protocol.js";
import type { V1ConfigMap, V1Container, V1NetworkPolicy, V1Pod, V1Secret } from "@kubernetes/client-node";
import { LABEL } from "../../labels.js";
import type { AgentUser } from "../../run/output.js";
import { agentMemoryBytes, outputQuotaBytes } from "../../run/output-volume.js";

export const GATE_CONTAINER = "airlock-gate";
export const AGENT_CONTAINER = "agent";
export const KEEPER_CONTAINER = "airlock-keeper";
export const REPORT_CONTAINER = "airlock-report";
export const POD_GATE = "/usr/local/bin/airlock-pod-gate";
/** The file the runner creates (over exec, in the gate's own volume) once it has checked the rules. */
export const GATE_RELEASE_FILE = "/run/airlock-gate/go";
/** ConfigMaps hold at most 1 MiB; what a run puts in one stays below that with room for the rules. */
export const CONFIGMAP_BUDGET = 900 * 1024;

/** One file the agent's container sees (its bundle or its workspace). */
export interface PodFile {
  /** Path below the mount point. */
  path: string;
  content: Buffer;
  /** 0o755 for executables, else 0o644. */
  mode?: number;
}

export interface PodSpecInput {
  runId: string;
  agentName: string;
  namespace: string;
  owner: string;
  expiresAt: number;
  gateImage: string;
  agentImage: string;
  /** Never for images loaded into the nodes, IfNotPresent otherwise. */
  pullPolicy: "Never" | "IfNotPresent";
  /** Replaces the image's entrypoint (undefined: keep it). */
  command?: string[];
  args: string[];
  user: AgentUser;
  memoryBytes: number;
  cpus: number;
  outputBytes: number;
  /** The agent's whole run may not outlast this (a backstop if the runner is gone). */
  deadlineSeconds: number;
  /** How long the keeper holds the output at most. */
  holdSeconds: number;
  /** How long the gate waits for the runner's release. */
  releaseSeconds: number;
  rules: { v4: string; v6: string };
  /** The agent's files at /opt/agent/run, and /workspace's. */
  bundle: PodFile[];
  workspace: PodFile[];
  /** The agent's /etc/hosts: the policy's names, pinned to what the runner resolved (gate/enforce.ts). */
  hostsFile: string;
  /** The trust files for HTTPS the gate terminates (mounted at /etc/airlock), when the run has them. */
  trust?: { ca: string; bundle: string };
  /** The run DNATs 127.0.0.1:PORT out of the Pod (localhost endpoints): needs route_localnet. */
  loopbackForwarded: boolean;
  /** For the NetworkPolicy: every destination the rules allow. */
  egress: { ip: string; port: number; protocol?: "udp" }[];
  /** The network is disabled: the rules deny everything but loopback, and so does the NetworkPolicy. */
  networkDisabled: boolean;
}

export function objectName(runId: string): string {
  return `airlock-${runId.replace(/_/g, "-")}`;
}

function metadata(input: PodSpecInput, role: string, suffix = "") {
  return {
    name: objectName(input.runId) + suffix,
    namespace: input.namespace,
    // The Docker containers' label keys. Names, owners and deadlines are annotations: label values
    // cannot hold a "host:pid" or an agent's free-form name.
    labels: { [LABEL.managed]: "true", [LABEL.run]: input.runId, [LABEL.role]: role },
    annotations: {
      [LABEL.agent]: input.agentName,
      [LABEL.owner]: input.owner,
      [LABEL.expires]: String(input.expiresAt),
    },
  };
}

function fileKeys(prefix: string, files: PodFile[]) {
  return files.map((f, i) => ({ key: `${prefix}${i}`, path: f.path, mode: f.mode ?? 0o644, content: f.content }));
}

export function configMapSpec(input: PodSpecInput): V1ConfigMap {
  const binaryData: Record<string, string> = {};
  for (const f of [...fileKeys("b", input.bundle), ...fileKeys("w", input.workspace)])
    binaryData[f.key] = f.content.toString("base64");
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: metadata(input, "files"),
    data: {
      "rules-v4": input.rules.v4,
      "rules-v6": input.rules.v6,
      hosts: input.hostsFile,
      ...(input.trust ? { "trust-ca": input.trust.ca, "trust-bundle": input.trust.bundle } : {}),
    },
    binaryData,
  };
}

export function envSecretSpec(input: PodSpecInput, env: Record<string, string>): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: metadata(input, "env", "-env"),
    type: "Opaque",
    stringData: env,
  };
}

const NO_PRIVILEGE = {
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  seccompProfile: { type: "RuntimeDefault" },
};

export function podSpec(input: PodSpecInput): V1Pod {
  const name = objectName(input.runId);
  const small = { limits: { memory: "32Mi", cpu: "200m" }, requests: { memory: "8Mi", cpu: "5m" } };
  const gate: V1Container = {
    name: GATE_CONTAINER,
    image: input.gateImage,
    imagePullPolicy: input.pullPolicy,
    command: [POD_GATE, "apply", String(input.releaseSeconds)],
    securityContext: {
      ...NO_PRIVILEGE,
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] },
    },
    resources: small,
    volumeMounts: [
      { name: "rules", mountPath: "/etc/airlock-gate", readOnly: true },
      { name: "gate-run", mountPath: "/run/airlock-gate" },
    ],
  };
  const agent: V1Container = {
    name: AGENT_CONTAINER,
    image: input.agentImage,
    imagePullPolicy: input.pullPolicy,
    ...(input.command ? { command: input.command } : {}),
    args: input.args,
    workingDir: "/workspace",
    envFrom: [{ secretRef: { name: `${name}-env` } }],
    securityContext: {
      ...NO_PRIVILEGE,
      runAsUser: input.user.uid,
      runAsGroup: input.user.gid,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    },
    resources: {
      // /output is in memory (below), charged to the agent's container: on top of the policy's memory.
      limits: {
        memory: String(agentMemoryBytes(input.memoryBytes, { bytes: input.outputBytes, entries: 0 })),
        cpu: `${Math.max(1, Math.round(input.cpus * 1000))}m`,
      },
      // Scheduled by what an agent usually uses, limited by what the policy allows.
      requests: { memory: String(Math.min(input.memoryBytes, 64 * 1024 * 1024)), cpu: "10m" },
    },
    volumeMounts: [
      { name: "output", mountPath: "/output" },
      { name: "tmp", mountPath: "/tmp" },
      { name: "workspace", mountPath: "/workspace", readOnly: true },
      ...(input.bundle.length ? [{ name: "bundle", mountPath: "/opt/agent/run", readOnly: true }] : []),
      // The run's own /etc/hosts, as on Docker. The kubelet's would hold the policy's names as host
      // aliases, but it mounts one only when it knows the Pod's IP as the container is created, and
      // without one `localhost` falls through to the DNS that the Pod does not have.
      { name: "files", mountPath: "/etc/hosts", subPath: "hosts", readOnly: true },
      ...(input.trust ? [{ name: "trust", mountPath: TRUST_MOUNT, readOnly: true }] : []),
      // The run's refusals so far, which the runner writes through the reporter: read-only here.
      { name: "refusals", mountPath: REFUSALS_DIR, readOnly: true },
    ],
  };
  const keeper: V1Container = {
    name: KEEPER_CONTAINER,
    image: input.gateImage,
    imagePullPolicy: input.pullPolicy,
    command: [POD_GATE, "keep", String(input.holdSeconds)],
    securityContext: {
      ...NO_PRIVILEGE,
      runAsUser: input.user.uid,
      runAsGroup: input.user.gid,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    },
    resources: small,
    volumeMounts: [{ name: "output", mountPath: "/output", readOnly: true }],
  };
  const reporter: V1Container = {
    name: REPORT_CONTAINER,
    image: input.gateImage,
    imagePullPolicy: input.pullPolicy,
    command: [POD_GATE, "keep", String(input.holdSeconds)],
    securityContext: {
      ...NO_PRIVILEGE,
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      capabilities: { drop: ["ALL"] },
    },
    resources: small,
    // Where the runner writes the agent's refusals so far (over exec, when the agent asks).
    volumeMounts: [{ name: "refusals", mountPath: REFUSALS_DIR }],
  };
  const items = (prefix: string, files: PodFile[]) =>
    fileKeys(prefix, files).map((f) => ({ key: f.key, path: f.path, mode: f.mode }));
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: metadata(input, "agent"),
    spec: {
      restartPolicy: "Never",
      // The keeper stops the agent (timeout, cancel) without ending the Pod; see the top of this file.
      shareProcessNamespace: true,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      activeDeadlineSeconds: input.deadlineSeconds,
      // The runner deletes the Pod with the run's own grace; this is only the default.
      terminationGracePeriodSeconds: 5,
      dnsPolicy: "None",
      dnsConfig: {
        nameservers: ["127.0.0.1"],
        options: [
          { name: "timeout", value: "1" },
          { name: "attempts", value: "1" },
        ],
      },
      securityContext: {
        seccompProfile: { type: "RuntimeDefault" },
        sysctls: [
          // No unprivileged ICMP sockets.
          { name: "net.ipv4.ping_group_range", value: "1 0" },
          // Lets the DNAT of 127.0.0.1:PORT leave the Pod (an unsafe sysctl the kubelet must allow).
          ...(input.loopbackForwarded ? [{ name: "net.ipv4.conf.all.route_localnet", value: "1" }] : []),
        ],
      },
      // Always: a Pod has a network interface even when the policy disables the network (then the rules deny all).
      initContainers: [gate],
      containers: [agent, keeper, reporter],
      volumes: [
        // A tmpfs of the policy's size (the kubelet sizes memory-backed volumes by their limit): a
        // quota at every write, where a disk-backed emptyDir's sizeLimit is an eviction after the fact.
        {
          name: "output",
          emptyDir: { medium: "Memory", sizeLimit: String(outputQuotaBytes({ bytes: input.outputBytes, entries: 0 })) },
        },
        { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
        { name: "gate-run", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
        { name: "refusals", emptyDir: { medium: "Memory", sizeLimit: "4Mi" } },
        {
          name: "rules",
          configMap: {
            name,
            items: [
              { key: "rules-v4", path: "v4" },
              { key: "rules-v6", path: "v6" },
            ],
          },
        },
        { name: "files", configMap: { name, items: [{ key: "hosts", path: "hosts" }] } },
        ...(input.trust
          ? [
              {
                name: "trust",
                configMap: {
                  name,
                  items: [
                    { key: "trust-ca", path: TRUST_FILES.ca },
                    { key: "trust-bundle", path: TRUST_FILES.bundle },
                  ],
                },
              },
            ]
          : []),
        input.workspace.length
          ? { name: "workspace", configMap: { name, items: items("w", input.workspace) } }
          : { name: "workspace", emptyDir: { sizeLimit: "1Mi" } },
        ...(input.bundle.length ? [{ name: "bundle", configMap: { name, items: items("b", input.bundle) } }] : []),
      ],
    },
  };
}

/**
 * Defence in depth where the cluster enforces NetworkPolicy: no ingress, and egress only to what the
 * rules allow (nothing at all when the network is disabled).
 */
export function networkPolicySpec(input: PodSpecInput): V1NetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: metadata(input, "network-policy"),
    spec: {
      podSelector: { matchLabels: { [LABEL.run]: input.runId, [LABEL.role]: "agent" } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [],
      egress: input.networkDisabled
        ? []
        : input.egress.map((e) => ({
            to: [{ ipBlock: { cidr: `${e.ip}/32` } }],
            ports: [{ protocol: e.protocol === "udp" ? "UDP" : "TCP", port: e.port }],
          })),
    },
  };
}
