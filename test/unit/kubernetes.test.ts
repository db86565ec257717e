import { describe, expect, it } from "vitest";
import { hostsFile } from "../../runner/gate/plan.js";
import { kubernetesSettings } from "../../runner/backends/kubernetes/config.js";
import { qualifiedTag } from "../../runner/backends/kubernetes/index.js";
import {
  AGENT_CONTAINER,
  configMapSpec,
  envSecretSpec,
  GATE_CONTAINER,
  KEEPER_CONTAINER,
  networkPolicySpec,
  objectName,
  podSpec,
  REPORT_CONTAINER,
  type PodSpecInput,
} from "../../runner/backends/kubernetes/pod-spec.js";
import { backendFromEnv } from "../../runner/backends/registry.js";
import { createRunner } from "../../runner/runner.js";

function input(overrides: Partial<PodSpecInput> = {}): PodSpecInput {
  return {
    runId: "consumer_x-1a2b3c4d",
    agentName: "consumer",
    namespace: "airlock",
    owner: "host:123",
    expiresAt: 1_900_000_000_000,
    gateImage: "airlock/gate:abc",
    agentImage: "airlock/agent:def",
    pullPolicy: "Never",
    command: ["node", "/opt/airlock/dist/bootstrap.js"],
    args: ["/opt/agent/run/agent.mjs"],
    user: { uid: 10001, gid: 10001 },
    memoryBytes: 512 * 1024 * 1024,
    cpus: 1.5,
    outputBytes: 100 * 1024 * 1024,
    deadlineSeconds: 400,
    holdSeconds: 400,
    releaseSeconds: 60,
    rules: { v4: "*filter\nCOMMIT\n", v6: "*filter\nCOMMIT\n" },
    bundle: [{ path: "agent.mjs", content: Buffer.from("console.log(1)") }],
    workspace: [{ path: "data/in.txt", content: Buffer.from("hi") }],
    hostsFile: hostsFile({ hosts: [{ name: "redis.internal", ip: "10.1.2.3" }] }),
    loopbackForwarded: true,
    egress: [
      { ip: "10.244.0.1", port: 40001 },
      { ip: "10.1.2.3", port: 6379 },
    ],
    networkDisabled: false,
    ...overrides,
  };
}

const container = (pod: ReturnType<typeof podSpec>, name: string) =>
  [...(pod.spec!.initContainers ?? []), ...pod.spec!.containers].find((c) => c.name === name)!;

describe("the agent's Pod", () => {
  const pod = podSpec(input());

  it("gives the agent no capability, no root, no escalation, a read-only root and the policy's limits", () => {
    const agent = container(pod, AGENT_CONTAINER);
    expect(agent.securityContext).toMatchObject({
      runAsUser: 10001,
      runAsGroup: 10001,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(agent.securityContext!.capabilities!.add).toBeUndefined();
    // /output is a memory-backed emptyDir of the policy's size, charged to the agent: on top of its memory.
    expect(agent.resources!.limits).toEqual({ memory: String(612 * 1024 * 1024), cpu: "1500m" });
    expect(pod.spec!.volumes!.find((v) => v.name === "output")!.emptyDir).toEqual({
      medium: "Memory",
      sizeLimit: String(100 * 1024 * 1024),
    });
    expect(agent.envFrom).toEqual([{ secretRef: { name: `${objectName("consumer_x-1a2b3c4d")}-env` } }]);
    expect(agent.env).toBeUndefined();
    expect(agent.volumeMounts!.find((m) => m.mountPath === "/workspace")!.readOnly).toBe(true);
    expect(agent.volumeMounts!.find((m) => m.mountPath === "/opt/agent/run")!.readOnly).toBe(true);
  });

  it("gates it from an init container that holds only NET_ADMIN and NET_RAW, before any other container", () => {
    expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual([GATE_CONTAINER]);
    const gate = container(pod, GATE_CONTAINER);
    expect(gate.image).toBe("airlock/gate:abc");
    expect(gate.securityContext!.capabilities).toEqual({ drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] });
    expect(gate.securityContext!.allowPrivilegeEscalation).toBe(false);
    // Also with the network disabled: a Pod always has an interface.
    expect(podSpec(input({ networkDisabled: true })).spec!.initContainers!.map((c) => c.name)).toEqual([
      GATE_CONTAINER,
    ]);
  });

  it("keeps the output and the denied tables in containers without any capability; the keeper, as the agent's uid, can stop it", () => {
    const keeper = container(pod, KEEPER_CONTAINER);
    const reporter = container(pod, REPORT_CONTAINER);
    expect(keeper.securityContext).toMatchObject({
      runAsUser: 10001,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      readOnlyRootFilesystem: true,
    });
    expect(keeper.volumeMounts).toEqual([{ name: "output", mountPath: "/output", readOnly: true }]);
    expect(reporter.securityContext).toMatchObject({
      runAsUser: 0,
      capabilities: { drop: ["ALL"] },
      allowPrivilegeEscalation: false,
    });
    expect(reporter.securityContext!.capabilities!.add).toBeUndefined();
    // Only the refusals volume, which the agent mounts read-only: the runner writes its live list through the reporter.
    expect(reporter.volumeMounts).toEqual([{ name: "refusals", mountPath: "/run/airlock" }]);
    expect(container(pod, AGENT_CONTAINER).volumeMounts).toContainEqual({
      name: "refusals",
      mountPath: "/run/airlock",
      readOnly: true,
    });
    // One process namespace: the keeper signals the agent's processes, and SIGKILL reaches its main one.
    expect(pod.spec!.shareProcessNamespace).toBe(true);
  });

  it("has no service-account token, no service links, no DNS, no host namespaces", () => {
    const spec = pod.spec!;
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.enableServiceLinks).toBe(false);
    expect(spec.dnsPolicy).toBe("None");
    expect(spec.dnsConfig!.nameservers).toEqual(["127.0.0.1"]);
    // Names come from the run's own /etc/hosts, never from a kubelet file that may not be there.
    expect(spec.hostAliases).toBeUndefined();
    const agent = spec.containers.find((c) => c.name === AGENT_CONTAINER)!;
    const hosts = agent.volumeMounts!.find((m) => m.mountPath === "/etc/hosts")!;
    expect(hosts).toMatchObject({ subPath: "hosts", readOnly: true });
    expect(spec.volumes!.find((v) => v.name === hosts.name)!.configMap!.items).toEqual([
      { key: "hosts", path: "hosts" },
    ]);
    expect(configMapSpec(input({})).data!.hosts).toBe(
      "127.0.0.1\tlocalhost\n# names from the policy, resolved by the airlock runner\n10.1.2.3\tredis.internal\n",
    );
    expect(spec.hostNetwork ?? false).toBe(false);
    expect(spec.hostPID ?? false).toBe(false);
    expect(spec.restartPolicy).toBe("Never");
    expect(spec.activeDeadlineSeconds).toBe(400);
  });

  it("asks for route_localnet only when localhost endpoints are forwarded", () => {
    const names = (p: ReturnType<typeof podSpec>) => p.spec!.securityContext!.sysctls!.map((s) => s.name);
    expect(names(pod)).toContain("net.ipv4.conf.all.route_localnet");
    expect(names(podSpec(input({ loopbackForwarded: false })))).toEqual(["net.ipv4.ping_group_range"]);
  });

  it("is labelled for cleanup, with a name Kubernetes accepts", () => {
    expect(pod.metadata!.name).toBe("airlock-consumer-x-1a2b3c4d");
    expect(pod.metadata!.labels).toEqual({
      "dev.airlock.managed": "true",
      "dev.airlock.run": "consumer_x-1a2b3c4d",
      "dev.airlock.role": "agent",
    });
    expect(pod.metadata!.annotations).toMatchObject({
      "dev.airlock.owner": "host:123",
      "dev.airlock.expires": "1900000000000",
    });
  });

  it("puts the rules and files in one ConfigMap, and the environment in a Secret", () => {
    const map = configMapSpec(input());
    expect(map.data).toEqual({
      "rules-v4": "*filter\nCOMMIT\n",
      "rules-v6": "*filter\nCOMMIT\n",
      hosts: expect.stringContaining("127.0.0.1\tlocalhost\n"),
    });
    expect(Buffer.from(map.binaryData!.b0!, "base64").toString()).toBe("console.log(1)");
    expect(Buffer.from(map.binaryData!.w0!, "base64").toString()).toBe("hi");
    const workspace = pod.spec!.volumes!.find((v) => v.name === "workspace")!;
    expect(workspace.configMap!.items).toEqual([{ key: "w0", path: "data/in.txt", mode: 0o644 }]);
    const secret = envSecretSpec(input(), { REDIS_URL: "redis://u:p@localhost:6379" });
    expect(secret.stringData).toEqual({ REDIS_URL: "redis://u:p@localhost:6379" });
    expect(secret.metadata!.name).toBe("airlock-consumer-x-1a2b3c4d-env");
  });
});

describe("the run's NetworkPolicy", () => {
  it("selects only the run's Pod, allows no ingress, and egress to exactly the rules' destinations", () => {
    const policy = networkPolicySpec(input());
    expect(policy.spec!.podSelector!.matchLabels).toEqual({
      "dev.airlock.run": "consumer_x-1a2b3c4d",
      "dev.airlock.role": "agent",
    });
    expect(policy.spec!.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy.spec!.ingress).toEqual([]);
    expect(policy.spec!.egress).toEqual([
      { to: [{ ipBlock: { cidr: "10.244.0.1/32" } }], ports: [{ protocol: "TCP", port: 40001 }] },
      { to: [{ ipBlock: { cidr: "10.1.2.3/32" } }], ports: [{ protocol: "TCP", port: 6379 }] },
    ]);
    expect(networkPolicySpec(input({ networkDisabled: true })).spec!.egress).toEqual([]);
  });
});

describe("kubernetes settings", () => {
  it("takes the environment, checked", () => {
    expect(
      kubernetesSettings(
        {},
        {
          AIRLOCK_K8S_NAMESPACE: "agents",
          AIRLOCK_K8S_HOST_ADDRESS: "10.244.0.1",
          AIRLOCK_K8S_LOAD_IMAGE: "kind load docker-image {image}",
          KUBECONFIG: "/k",
        },
      ),
    ).toEqual({
      namespace: "agents",
      hostAddress: "10.244.0.1",
      loadImage: "kind load docker-image {image}",
      kubeconfig: "/k",
    });
    expect(kubernetesSettings({}, {})).toEqual({ namespace: "airlock" });
  });

  it("refuses what cannot work, with the fix", () => {
    expect(() => kubernetesSettings({ namespace: "Agents_1" }, {})).toThrow(
      /not a valid namespace name[\s\S]*fix: use lower-case/,
    );
    expect(() => kubernetesSettings({ loadImage: "kind load docker-image" }, {})).toThrow(/has no \{image\}/);
    expect(() => kubernetesSettings({ hostAddress: "node-1" }, {})).toThrow(/not an IPv4 address/);
  });

  it("names images the way the nodes list them", () => {
    expect(qualifiedTag("airlock/gate:abc")).toBe("docker.io/airlock/gate:abc");
    expect(qualifiedTag("redis:7")).toBe("docker.io/library/redis:7");
    expect(qualifiedTag("registry.local:5000/team/agent:1")).toBe("registry.local:5000/team/agent:1");
  });
});

describe("choosing a backend", () => {
  it("defaults to Docker, and refuses a backend airlock does not have", async () => {
    expect(backendFromEnv({})).toBeUndefined();
    expect(backendFromEnv({ AIRLOCK_BACKEND: "kubernetes" })).toBe("kubernetes");
    expect(() => backendFromEnv({ AIRLOCK_BACKEND: "nomad" })).toThrow(
      /AIRLOCK_BACKEND=nomad is not a backend[\s\S]*docker, kubernetes/,
    );
    const runner = createRunner({ reapOrphans: false });
    expect((await runner.backend()).name).toBe("docker");
    expect((await runner.backend("kubernetes")).name).toBe("kubernetes");
    expect(await runner.backend("kubernetes")).toBe(await runner.backend("kubernetes"));
  });
});
