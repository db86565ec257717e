/**
 * airlock's NetworkPolicy, enforced: on a cluster with Cilium (scripts/k8s/netpol.sh brings it up), a
 * Pod made from airlock's own Pod spec but with its gate opened (the init container's rules accept
 * everything, as if the gate had failed) reaches only the destination its NetworkPolicy allows; the same
 * Pod without the NetworkPolicy reaches both decoys (the control). And a real run on that cluster works
 * through the NetworkPolicy: its localhost endpoint, forwarded by the runner, is allowed, nothing else is.
 * The decoys are servers this test starts on the pod network's host address.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAgent } from "../../runner/index.js";
import { dockerClient, ensureImages } from "../../runner/internal.js";
import { packagePath } from "../../runner/paths.js";
import { kubernetesBackend } from "../../runner/backends/kubernetes/index.js";
import { execIn } from "../../runner/backends/kubernetes/exec.js";
import {
  configMapSpec,
  envSecretSpec,
  GATE_CONTAINER,
  GATE_RELEASE_FILE,
  networkPolicySpec,
  objectName,
  podSpec,
  type PodSpecInput,
} from "../../runner/backends/kubernetes/pod-spec.js";
import { PodWatch } from "../../runner/backends/kubernetes/pod-watch.js";
import { tcpDecoy, tempDir, type Decoy } from "../integration/helpers.js";

const OPEN_RULES = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
const host = process.env.AIRLOCK_K8S_HOST_ADDRESS ?? "10.244.0.1";

/** A Pod from airlock's spec whose gate lets everything through; what its probes of `targets` saw. */
async function openGatePod(
  runId: string,
  targets: Decoy[],
  allowed: Decoy,
  withPolicy: boolean,
): Promise<Record<string, string>> {
  const backend = kubernetesBackend();
  const api = backend.client;
  const images = await ensureImages(dockerClient());
  await backend.loadImages([images.gate]);
  await backend.ready();
  const probe = `const net = require("net"); const out = {};
    Promise.all(${JSON.stringify(targets.map((t) => t.port))}.map((port) => new Promise((r) => {
      const s = net.connect({ host: ${JSON.stringify(host)}, port }); s.setTimeout(3000, () => { out[port] = "BLOCKED (timeout)"; s.destroy(); r(); });
      s.on("connect", () => { out[port] = "OPEN"; s.destroy(); r(); }); s.on("error", (e) => { out[port] = "BLOCKED (" + e.code + ")"; r(); });
    }))).then(() => console.log("PROBES " + JSON.stringify(out)));`;
  const input: PodSpecInput = {
    runId,
    agentName: "netpol",
    namespace: backend.settings.namespace,
    owner: "test",
    expiresAt: Date.now() + 600_000,
    gateImage: images.gate,
    agentImage: images.gate,
    pullPolicy: backend.pullPolicy,
    command: ["node", "-e", probe],
    args: [],
    user: { uid: 10001, gid: 10001 },
    memoryBytes: 256 * 1024 * 1024,
    cpus: 1,
    outputBytes: 1024 * 1024,
    deadlineSeconds: 300,
    holdSeconds: 300,
    releaseSeconds: 60,
    rules: { v4: OPEN_RULES, v6: OPEN_RULES },
    bundle: [],
    workspace: [],
    hostsFile: "127.0.0.1\tlocalhost\n",
    loopbackForwarded: false,
    egress: [{ ip: host, port: allowed.port }],
    networkDisabled: false,
  };
  const ns = input.namespace;
  const name = objectName(runId);
  await api.core.createNamespacedConfigMap({ namespace: ns, body: configMapSpec(input) });
  await api.core.createNamespacedSecret({ namespace: ns, body: envSecretSpec(input, {}) });
  if (withPolicy) {
    await api.networking.createNamespacedNetworkPolicy({ namespace: ns, body: networkPolicySpec(input) });
    // Cilium computes the Pod's policy when its endpoint appears; give the policy a moment to be seen first.
    await new Promise((r) => setTimeout(r, 2000));
  }
  await api.core.createNamespacedPod({ namespace: ns, body: podSpec(input) });
  const watch = new PodWatch(api, ns, name);
  try {
    await watch.until((p) => (p.status?.initContainerStatuses?.[0]?.state?.running ? true : undefined), 120_000);
    await execIn({ client: api, namespace: ns, pod: name, container: GATE_CONTAINER }, ["touch", GATE_RELEASE_FILE]);
    await watch.until(
      (p) => (p.status?.containerStatuses?.find((c) => c.name === "agent")?.state?.terminated ? true : undefined),
      120_000,
    );
    const log = String(await api.core.readNamespacedPodLog({ namespace: ns, name, container: "agent" }));
    const line = /PROBES (.*)/.exec(log);
    if (!line) throw new Error(`the probe Pod printed no result: ${log}`);
    return JSON.parse(line[1]!) as Record<string, string>;
  } finally {
    watch.close();
    await api.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0 }).catch(() => {});
    await api.core.deleteNamespacedConfigMap({ namespace: ns, name }).catch(() => {});
    await api.core.deleteNamespacedSecret({ namespace: ns, name: `${name}-env` }).catch(() => {});
    await api.networking.deleteNamespacedNetworkPolicy({ namespace: ns, name }).catch(() => {});
  }
}

describe("airlock's NetworkPolicy on a cluster that enforces it (Cilium)", () => {
  let allowed: Decoy;
  let other: Decoy;

  beforeAll(async () => {
    allowed = await tcpDecoy(host);
    other = await tcpDecoy(host);
  });
  afterAll(async () => {
    await allowed?.close();
    await other?.close();
  });

  it("without a NetworkPolicy, a Pod whose gate is open reaches both decoys (the control)", async () => {
    const seen = await openGatePod(`netpol-control-${Date.now().toString(36)}`, [allowed, other], allowed, false);
    expect(seen).toEqual({ [allowed.port]: "OPEN", [other.port]: "OPEN" });
  });

  it("with airlock's NetworkPolicy, the same Pod reaches only the allowed endpoint, although its gate is open", async () => {
    const before = other.hits();
    const seen = await openGatePod(`netpol-held-${Date.now().toString(36)}`, [allowed, other], allowed, true);
    expect(seen[allowed.port]).toBe("OPEN");
    expect(seen[other.port]).toMatch(/^BLOCKED/);
    expect(other.hits()).toBe(before);
  });

  it("a real run on that cluster gets through its NetworkPolicy to its localhost endpoint, and to nothing else", async () => {
    const result = await runAgent({
      agent: packagePath("examples", "hello", "agent.ts"),
      policy: packagePath("policies", "hello.yaml"),
      outputDir: join(await tempDir(), "out"),
      backend: "kubernetes",
    });
    expect(result.status, result.error ?? result.stdout).toBe("succeeded");
    expect(result.stdout).toContain("PING -> PONG");
    expect(result.stdout).toMatch(/unlisted port \(localhost:6380\): ECONNREFUSED/);
  });
});
