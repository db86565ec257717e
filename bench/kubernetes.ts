/**
 * Bench section 7: agents as Pods on a cluster (the local one from scripts/k8s/cluster.sh, brought
 * up for the section and down afterwards when no cluster answers and the bench runs as root), each
 * figure beside a plain Pod of the same image on the same cluster, measured in the same run:
 *
 *   - runAgent() → the agent's first line, against creating a Pod → its first line
 *   - 20 agents at once (until all have exited), against 20 plain Pods at once
 */
import { join } from "node:path";
import { execa } from "execa";
import type { V1Pod } from "@kubernetes/client-node";
import { definePolicy, runAgent } from "../runner/index.js";
import type { ImageSet } from "../runner/internal.js";
import { kubernetesBackend, type KubernetesBackend } from "../runner/backends/kubernetes/index.js";
import { PodWatch } from "../runner/backends/kubernetes/pod-watch.js";
import { loadLocalClusterEnv } from "../runner/backends/kubernetes/local-cluster.js";
import { packagePath } from "../runner/paths.js";

const NS = "airlock-bench";
const AGENTS = packagePath("bench", "agents");

export type AddRow = (section: string, metric: string, a: number[], b: number[], unit: string) => void;

async function answers(backend: KubernetesBackend): Promise<boolean> {
  return backend.client.core.listNode().then(
    () => true,
    () => false,
  );
}

/** A plain Pod of `image` that prints the time and exits; ms from the create call to that line, and to the Pod's end. */
async function plainPod(
  backend: KubernetesBackend,
  image: string,
  prefix: string,
): Promise<{ firstLine: number; done: number }> {
  const { core } = backend.client;
  const name = `${prefix}-${Date.now().toString(36)}`;
  const body: V1Pod = {
    metadata: { name, namespace: NS, labels: { "dev.airlock.bench": "plain" } },
    spec: {
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      containers: [
        {
          name: "plain",
          image,
          imagePullPolicy: backend.pullPolicy,
          command: ["node", "-e", "console.log('FIRST_LINE ' + Date.now())"],
        },
      ],
    },
  };
  const t0 = Date.now();
  await core.createNamespacedPod({ namespace: NS, body });
  const watch = new PodWatch(backend.client, NS, name);
  try {
    await watch.until((p) => (p.status?.containerStatuses?.[0]?.state?.terminated ? true : undefined), 120_000);
    const done = Date.now() - t0;
    const log = String(await core.readNamespacedPodLog({ namespace: NS, name, container: "plain" }));
    return { firstLine: Number(/FIRST_LINE (\d+)/.exec(log)![1]) - t0, done };
  } finally {
    watch.close();
    await core.deleteNamespacedPod({ namespace: NS, name, gracePeriodSeconds: 0 }).catch(() => {});
  }
}

async function airlockFirstLine(out: string, i: number): Promise<{ firstLine: number; done: number }> {
  const t0 = Date.now();
  const r = await runAgent({
    name: `k${i}`,
    agent: join(AGENTS, "first-line.ts"),
    policy: definePolicy({ name: "bench-k8s", network: { allowedEndpoints: ["localhost:6379"] } }),
    outputDir: join(out, `k${i}`),
    backend: "kubernetes",
  });
  if (r.status !== "succeeded") throw new Error(`a bench agent on kubernetes did not succeed: ${r.error ?? r.stdout}`);
  return { firstLine: Number(/FIRST_LINE (\d+)/.exec(r.stdout)![1]) - t0, done: Date.now() - t0 };
}

export async function kubernetesSection(
  images: ImageSet,
  addRow: AddRow,
  log: (...a: unknown[]) => void,
  reps: number,
  out: string,
): Promise<void> {
  loadLocalClusterEnv(packagePath(".cache", "k8s", "run", "airlock.env"));
  let backend = kubernetesBackend();
  let broughtUp = false;
  if (!(await answers(backend))) {
    if (process.getuid?.() !== 0) {
      log("7. kubernetes: no cluster answers, and bringing up the local one needs root: skipped");
      return;
    }
    log("7. kubernetes: bringing up the local cluster (scripts/k8s/cluster.sh up)");
    await execa("bash", [packagePath("scripts", "k8s", "cluster.sh"), "up"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    broughtUp = true;
    loadLocalClusterEnv(packagePath(".cache", "k8s", "run", "airlock.env"));
    backend = kubernetesBackend();
  }
  try {
    log("7. kubernetes: first line, one agent and 20 at once");
    await backend.client.core.createNamespace({ body: { metadata: { name: NS } } }).catch(() => {});
    await backend.loadImages([images.agent, images.gate]);
    // Warm-up: the agent's image on the node, the namespace, the runner's client.
    await airlockFirstLine(out, -1);
    await plainPod(backend, images.agent, "plain-warm");
    const first = { airlock: [] as number[], plain: [] as number[] };
    for (let i = 0; i < reps; i++) {
      first.plain.push((await plainPod(backend, images.agent, `plain-${i}`)).firstLine);
      first.airlock.push((await airlockFirstLine(out, i)).firstLine);
    }
    addRow(
      "7. kubernetes",
      "runAgent() → agent's first line, as a Pod vs a plain Pod → first line",
      first.airlock,
      first.plain,
      "ms",
    );
    const many = { airlock: [] as number[], plain: [] as number[] };
    for (let i = 0; i < Math.max(2, Math.min(reps, 3)); i++) {
      let t = performance.now();
      await Promise.all(Array.from({ length: 20 }, (_, k) => plainPod(backend, images.agent, `plain-many-${i}-${k}`)));
      many.plain.push(performance.now() - t);
      t = performance.now();
      await Promise.all(Array.from({ length: 20 }, (_, k) => airlockFirstLine(out, 1000 * (i + 1) + k)));
      many.airlock.push(performance.now() - t);
    }
    addRow("7. kubernetes", "20 agents at once as Pods vs 20 plain Pods: wall time", many.airlock, many.plain, "ms");
  } finally {
    await backend.client.core.deleteNamespace({ name: NS }).catch(() => {});
    if (broughtUp)
      await execa("bash", [packagePath("scripts", "k8s", "cluster.sh"), "down"], {
        stdio: ["ignore", "ignore", "inherit"],
      });
  }
}
