/**
 * The escape suite against Pods: the same attacker (attack.py) and the same checks as on Docker
 * (security/escape-checks.ts), with the decoys a Pod could reach: the host's loopback, the host on the
 * pod bridge and on Docker's bridge, a Pod of the test's own on the cluster network, and an agent of
 * another airlock run (also a Pod). Policy: only localhost:6379, which on this backend is forwarded
 * by the runner from the Pod's 127.0.0.1. Every target is a decoy this test started.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe } from "vitest";
import { definePolicy, dockerClient, ensureImages, runAgent, type AgentResult } from "../../runner/index.js";
import { kubernetesBackend } from "../../runner/backends/kubernetes/index.js";
import { waitUntil } from "../../runner/util/wait-until.js";
import { AGENTS, leftoverContainers, tcpDecoy, tempDir, udpDecoy, type Decoy } from "../integration/helpers.js";
import { attackerImage } from "../integration/security/attacker.js";
import { escapeChecks } from "../integration/security/escape-checks.js";
import { SecurityReport } from "../integration/security/report.js";

const SECURITY = join(import.meta.dirname, "..", "integration", "security");
const report = new SecurityReport("8-kubernetes");
const DECOY_NS = "airlock-test-decoys";

/** A plain Pod (no airlock) on the cluster network, logging every packet it gets. */
async function decoyPod(): Promise<{ ip: string; hits(): Promise<string[]>; remove(): Promise<void> }> {
  const backend = kubernetesBackend();
  const { core } = backend.client;
  const gate = (await ensureImages(dockerClient())).gate;
  await backend.loadImages([gate]);
  await core.createNamespace({ body: { metadata: { name: DECOY_NS } } }).catch(() => {});
  const name = `decoy-${Date.now()}`;
  const script = `
    const net = require("net"), dgram = require("dgram");
    net.createServer((s) => { console.log("HIT tcp " + s.remoteAddress); s.destroy(); }).listen(7001);
    for (const port of [7002, 53]) dgram.createSocket("udp4").on("message", (m, r) => console.log("HIT udp" + port + " " + r.address)).bind(port);
    console.log("decoy up");`;
  const body: V1Pod = {
    metadata: { name, namespace: DECOY_NS, labels: { "dev.airlock.test": "decoy" } },
    spec: { automountServiceAccountToken: false, containers: [{ name: "decoy", image: gate, imagePullPolicy: backend.pullPolicy, command: ["node", "-e", script], securityContext: { runAsUser: 0 } }] },
  };
  await core.createNamespacedPod({ namespace: DECOY_NS, body });
  const logs = async () => String(await core.readNamespacedPodLog({ namespace: DECOY_NS, name, container: "decoy" }).catch(() => ""));
  await waitUntil(async () => (await logs()).includes("decoy up"), { timeoutMs: 60_000, intervalMs: 200 });
  const ip = (await core.readNamespacedPod({ namespace: DECOY_NS, name })).status!.podIP!;
  return {
    ip,
    hits: async () => (await logs()).split("\n").filter((l) => l.includes("HIT")),
    remove: () => core.deleteNamespacedPod({ namespace: DECOY_NS, name, gracePeriodSeconds: 0 }).then(() => {}),
  };
}

function kubernetesEscapeSuite(mode: { label: string; area: string; airlockBuilt: boolean; language: "node" | "python" }): void {
  describe(`escape attempts from a Pod, ${mode.label} (policy allows only localhost:6379)`, () => {
    const area = (name: string) => `${name} (${mode.area})`;
    const decoys: Record<string, Decoy> = {};
    const gateway = process.env.AIRLOCK_K8S_HOST_ADDRESS ?? "10.244.0.1";
    let box: Awaited<ReturnType<typeof decoyPod>>;
    let victim: { result: Promise<AgentResult>; stop: AbortController; ip: string };
    let attacks: Record<string, { outcome: string; ms: number }>;
    let result: AgentResult;
    let outputDir: string;
    const secret = `host-secret-${Date.now()}`;

    beforeAll(async () => {
      const docker = dockerClient();
      const image = await attackerImage({ airlockBuilt: mode.airlockBuilt, language: mode.language });
      const dockerBridge = ((await docker.getNetwork("bridge").inspect()).IPAM?.Config?.[0] as { Gateway?: string } | undefined)?.Gateway ?? "172.17.0.1";
      decoys.loopbackTcp = await tcpDecoy("127.0.0.1");
      decoys.loopbackUdp = await udpDecoy("127.0.0.1");
      decoys.gatewayTcp = await tcpDecoy(gateway);
      decoys.gatewayAllowedPort = await tcpDecoy(gateway, 6379);
      decoys.gatewayUdp = await udpDecoy(gateway);
      decoys.gatewayDns = await udpDecoy(gateway, 53);
      decoys.dockerBridgeTcp = await tcpDecoy(dockerBridge);
      decoys.late = await tcpDecoy(gateway);
      decoys.ipv6 = await tcpDecoy("::", 0);
      box = await decoyPod();

      const stop = new AbortController();
      let announce: (ip: string) => void;
      const announced = new Promise<string>((r) => (announce = r));
      const victimResult = runAgent({
        agent: join(AGENTS, "victim.ts"),
        policy: definePolicy({ name: "victim", network: { allowedEndpoints: ["localhost:6379"] }, timeoutSeconds: 180 }),
        outputDir: join(await tempDir(), "victim"),
        signal: stop.signal,
        onEvent: (e) => e.type === "output" && e.line.startsWith("LISTENING ") && announce(e.line.split(" ")[1]!.split(":")[0]!),
      });
      victimResult.then((r) => announce(`victim ended: ${r.status} ${r.error ?? ""}`));
      victim = { result: victimResult, stop, ip: await announced };

      process.env.AIRLOCK_TEST_HOST_SECRET = secret;
      outputDir = join(await tempDir(), "attacker");
      const cfg = {
        gateway,
        allowed: { host: "127.0.0.1", port: 6379 },
        tcp: [
          { id: "other-port-on-allowed-host", host: "127.0.0.1", port: decoys.loopbackTcp.port },
          { id: "allowed-port-on-other-address", host: gateway, port: 6379 },
          { id: "host-via-airlock-bridge", host: gateway, port: decoys.gatewayTcp.port },
          { id: "host-via-docker-bridge", host: dockerBridge, port: decoys.dockerBridgeTcp.port },
          { id: "container-on-same-bridge", host: box.ip, port: 7001 },
          { id: "container-of-another-airlock-run", host: victim.ip, port: 7100 },
        ],
        udp: [
          { id: "host-loopback", host: "127.0.0.1", port: decoys.loopbackUdp.port },
          { id: "host-via-airlock-bridge", host: gateway, port: decoys.gatewayUdp.port },
          { id: "container-on-same-bridge", host: box.ip, port: 7002 },
        ],
        dns: [
          { id: "decoy-dns-on-host", host: gateway, port: 53 },
          { id: "decoy-dns-in-container", host: box.ip, port: 53 },
          { id: "docker-embedded-dns", host: "127.0.0.11", port: 53 },
        ],
        ipv6: [{ id: "loopback", host: "::1", port: decoys.ipv6.port }],
        late: { host: gateway, port: decoys.late.port },
      };
      result = await runAgent({
        command: mode.language === "python" ? ["python3", "-m", "airlock._bootstrap", "/workspace/attack.py"] : ["python3", "/workspace/attack.py"],
        image,
        policy: definePolicy({ name: "attacker", network: { allowedEndpoints: ["localhost:6379"] }, env: { set: { ATTACK: JSON.stringify(cfg) } }, timeoutSeconds: 120 }),
        outputDir,
        workingDir: SECURITY,
      });
      attacks = JSON.parse(await readFile(join(outputDir, "attacks.json"), "utf8").catch(() => `{"error": ${JSON.stringify(result.error ?? result.stdout.slice(-500))}}`));
      await new Promise((r) => setTimeout(r, 5000)); // give the detached child its chance
    }, 600_000);

    afterAll(async () => {
      delete process.env.AIRLOCK_TEST_HOST_SECRET;
      victim?.stop.abort();
      await victim?.result;
      await box?.remove().catch(() => {});
      await Promise.all(Object.values(decoys).map((d) => d.close()));
      report.save();
    });

    escapeChecks(
      () => ({
        attacks,
        result,
        outputDir,
        workspace: SECURITY,
        gateway,
        decoys,
        boxIp: box.ip,
        boxHits: () => box.hits(),
        victimIp: victim.ip,
        victimHits: async () => ((await (victim.stop.abort(), victim.result)).returnValue as { hits: number }).hits,
        secret,
        secret,
    leftovers: () => leftoverContainers(),
      }),
      report,
      area,
    );
  });
}

kubernetesEscapeSuite({ label: "an image airlock built", area: "Kubernetes Pod", airlockBuilt: true, language: "node" });
kubernetesEscapeSuite({ label: "a Python agent in an image derived from ours by plain docker build", area: "Kubernetes Pod, Python, derived image", airlockBuilt: false, language: "python" });
