/**
 * The escape suite against Pods: the same attacker (attack.py) and the same checks as on Docker
 * (security/escape-checks.ts), with the decoys a Pod could reach: the host's loopback, the host on the
 * pod bridge and on Docker's bridge, a Pod of the test's own on the cluster network, and an agent of
 * another airlock run (also a Pod). Policy: only localhost:6379, which on this backend is forwarded
 * by the runner from the Pod's 127.0.0.1. Every target is a decoy this test started.
 */
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe } from "vitest";
import { dockerClient, ensureImages } from "../../runner/internal.js";
import { kubernetesBackend } from "../../runner/backends/kubernetes/index.js";
import { waitUntil } from "../../runner/util/wait-until.js";
import { leftoverContainers, type Decoy } from "../integration/helpers.js";
import { attackerImage } from "../integration/security/attacker.js";
import {
  attackConfig,
  dockerBridgeGateway,
  escapeChecks,
  hostDecoys,
  runAttacker,
  startVictim,
  type Victim,
} from "../integration/security/escape-checks.js";
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
    spec: {
      automountServiceAccountToken: false,
      containers: [
        {
          name: "decoy",
          image: gate,
          imagePullPolicy: backend.pullPolicy,
          command: ["node", "-e", script],
          securityContext: { runAsUser: 0 },
        },
      ],
    },
  };
  await core.createNamespacedPod({ namespace: DECOY_NS, body });
  const logs = async () =>
    String(await core.readNamespacedPodLog({ namespace: DECOY_NS, name, container: "decoy" }).catch(() => ""));
  await waitUntil(async () => (await logs()).includes("decoy up"), { timeoutMs: 60_000, intervalMs: 200 });
  const ip = (await core.readNamespacedPod({ namespace: DECOY_NS, name })).status!.podIP!;
  return {
    ip,
    hits: async () => (await logs()).split("\n").filter((l) => l.includes("HIT")),
    remove: () => core.deleteNamespacedPod({ namespace: DECOY_NS, name, gracePeriodSeconds: 0 }).then(() => {}),
  };
}

function kubernetesEscapeSuite(mode: {
  label: string;
  area: string;
  airlockBuilt: boolean;
  language: "node" | "python";
}): void {
  describe(`escape attempts from a Pod, ${mode.label} (policy allows only localhost:6379)`, () => {
    const area = (name: string) => `${name} (${mode.area})`;
    let decoys: Record<string, Decoy> = {};
    const gateway = process.env.AIRLOCK_K8S_HOST_ADDRESS ?? "10.244.0.1";
    let box: Awaited<ReturnType<typeof decoyPod>>;
    let victim: Victim;
    let attack: Awaited<ReturnType<typeof runAttacker>>;
    const secret = `host-secret-${Date.now()}`;

    beforeAll(async () => {
      const image = await attackerImage({ airlockBuilt: mode.airlockBuilt, language: mode.language });
      const dockerBridge = await dockerBridgeGateway();
      decoys = await hostDecoys(gateway, dockerBridge);
      box = await decoyPod();
      victim = await startVictim();
      attack = await runAttacker(
        { image, language: mode.language },
        attackConfig({ gateway, dockerBridge, decoys, boxIp: box.ip, victimIp: victim.ip }),
        SECURITY,
        secret,
      );
    }, 600_000);

    afterAll(async () => {
      delete process.env.AIRLOCK_TEST_HOST_SECRET;
      await victim?.hits().catch(() => 0);
      await box?.remove().catch(() => {});
      await Promise.all(Object.values(decoys).map((d) => d.close()));
      report.save();
    });

    escapeChecks(
      () => ({
        ...attack,
        workspace: SECURITY,
        gateway,
        decoys,
        boxIp: box.ip,
        boxHits: () => box.hits(),
        victimIp: victim.ip,
        victimHits: () => victim.hits(),
        secret,
        leftovers: () => leftoverContainers(),
      }),
      report,
      area,
    );
  });
}

kubernetesEscapeSuite({
  label: "an image airlock built",
  area: "Kubernetes Pod",
  airlockBuilt: true,
  language: "node",
});
kubernetesEscapeSuite({
  label: "a Python agent in an image derived from ours by plain docker build",
  area: "Kubernetes Pod, Python, derived image",
  airlockBuilt: false,
  language: "python",
});
