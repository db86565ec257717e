/**
 * The gate's handshake with a Pod's init container: wait for its rules to be loaded (its own log says
 * so, with the Pod's address, read from the moment the Pod exists), read them back over exec and
 * compare them with what was sent, let the runner's forwarders accept the Pod's address, and only then
 * release the init, whose exit lets the kubelet start the agent. Any failure ends the run before the
 * agent container exists.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { GateError, KubernetesError, RunOptionsError } from "../../errors.js";
import { compareRulesets } from "../../gate/compare-rules.js";
import type { KubeClient } from "./client.js";
import { execRetrying } from "./exec.js";
import { GATE_CONTAINER, GATE_RELEASE_FILE } from "./pod-spec.js";
import { containerStatus, podStartProblem, type PodWatch } from "./pod-watch.js";

/** How long a Pod may take from creation to its gate running (scheduling, a first image on a node). */
export const GATE_START_MS = 120_000;

export interface PodGate {
  client: KubeClient;
  namespace: string;
  pod: string;
  watch: PodWatch;
  rules: { v4: string; v6: string };
  /** The run's loopback forwarders and HTTPS egress proxy: each serves the Pod's address once its rules are checked. */
  forwarders: { allow(ip: string): void }[];
  cancelled?: AbortSignal;
}

/**
 * The init container's rules, read back over exec and compared with what was sent; then the
 * forwarders accept the Pod's address and the init is released. The gate's own log line says when
 * its rules are loaded (and from which address): it is read from the moment the Pod exists, since
 * the Pod's status reaches the API only on the kubelet's next sync, a second or so later.
 */
export async function openPodGate(g: PodGate): Promise<void> {
  const { client: api, namespace, pod, watch } = g;
  const stop = new AbortController();
  const failed = watch
    .until(
      (p) => {
        const problem = podStartProblem(p);
        if (problem) return problem;
        const gate = containerStatus(p, GATE_CONTAINER, true)?.state?.terminated;
        return gate
          ? `the gate exited (${gate.exitCode}) before it was released: ${gate.message ?? gate.reason ?? ""}`
          : undefined;
      },
      GATE_START_MS,
      new Promise((r) => stop.signal.addEventListener("abort", r, { once: true })),
    )
    .then((problem) => {
      if (problem)
        throw new KubernetesError(`the Pod ${namespace}/${pod} could not start: ${problem}`, fixFor(problem));
    });
  try {
    const applied = await Promise.race([gateApplied(g, stop.signal), failed.then(() => undefined)]);
    if (!applied) {
      if (g.cancelled?.aborted) throw new RunOptionsError("the run was cancelled before the agent started");
      throw new KubernetesError(
        `the Pod ${namespace}/${pod} did not start its gate within ${GATE_START_MS / 1000} s${describeWaiting(watch.current)}`,
        `check the node (kubectl -n ${namespace} describe pod ${pod})`,
      );
    }
    const saved = await readRules(g, applied.backend);
    for (const [family, expected, actual] of [
      ["IPv4", g.rules.v4, saved.v4],
      ["IPv6", g.rules.v6, saved.v6],
    ] as const) {
      const diff = compareRulesets(expected, actual);
      if (diff)
        throw new GateError(
          `the Pod's ${family} rules are not the ones airlock sent: ${diff}`,
          "the gate image on the node is not airlock's: reload it (AIRLOCK_K8S_LOAD_IMAGE) and retry",
        );
    }
    // The address the Pod has, as its gate (airlock's code, before any agent exists) saw it; the API's, once it has one, must agree.
    const known = watch.current?.status?.podIP;
    if (known && known !== applied.ip)
      throw new GateError(`the Pod's gate reports address ${applied.ip}, the API ${known}`);
    g.forwarders.forEach((f) => {
      f.allow(applied.ip);
    });
    const released = await execRetrying(
      { client: api, namespace, pod, container: GATE_CONTAINER },
      ["touch", GATE_RELEASE_FILE],
      {
        timeoutMs: 15_000,
      },
    );
    if (released.code !== 0) throw new GateError(`could not release the Pod's gate: ${released.stderr.trim()}`);
  } finally {
    stop.abort();
    // It lost the race it was in; its error, if any, is not the run's.
    failed.catch(() => {});
  }
}

/** Polls the gate's log until it says its rules are loaded: their backend and the Pod's address (undefined if cancelled or too late). */
async function gateApplied(
  g: PodGate,
  stop: AbortSignal,
): Promise<{ backend: "nft" | "legacy"; ip: string } | undefined> {
  const deadline = Date.now() + GATE_START_MS;
  while (!stop.aborted && !g.cancelled?.aborted && Date.now() < deadline) {
    const logs = await g.client.core
      .readNamespacedPodLog({ namespace: g.namespace, name: g.pod, container: GATE_CONTAINER })
      // Logs that cannot be read add nothing to the error being made.
      .catch(() => "");
    const m = /airlock-gate: applied (nft|legacy) ([0-9.]+)/.exec(String(logs));
    if (m) return { backend: m[1] as "nft" | "legacy", ip: m[2]! };
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/** Both rule sets, read back in one exec (each exec is a round trip through the API server and the kubelet). */
async function readRules(g: PodGate, backend: "nft" | "legacy"): Promise<{ v4: string; v6: string }> {
  const split = "#airlock-split";
  const script =
    backend === "nft"
      ? `iptables-nft-save && echo '${split}' && ip6tables-nft-save`
      : `iptables-legacy-save && echo '${split}' && ip6tables-legacy-save`;
  const saved = await execRetrying(
    { client: g.client, namespace: g.namespace, pod: g.pod, container: GATE_CONTAINER },
    ["sh", "-c", script],
    {
      timeoutMs: 15_000,
    },
  );
  const [v4, v6] = saved.stdout.toString().split(`${split}\n`);
  if (saved.code !== 0 || v6 === undefined)
    throw new GateError(`could not read the Pod's rules back: ${saved.stderr.trim() || "no output"}`);
  return { v4: v4!, v6 };
}

export function describeWaiting(pod: V1Pod | undefined): string {
  const waiting = [...(pod?.status?.initContainerStatuses ?? []), ...(pod?.status?.containerStatuses ?? [])].find(
    (s) => s.state?.waiting,
  )?.state?.waiting;
  const unscheduled = pod?.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  if (unscheduled) return ` (not scheduled: ${unscheduled.message ?? unscheduled.reason})`;
  return waiting ? ` (${waiting.reason}: ${waiting.message ?? ""})` : "";
}

export function fixFor(problem: string): string | undefined {
  if (/SysctlForbidden|route_localnet/.test(problem))
    return "allow the sysctl on the kubelet (allowedUnsafeSysctls: [net.ipv4.conf.all.route_localnet]) for localhost endpoints; scripts/k8s/cluster.sh does";
  if (/ErrImageNeverPull|ImagePull|ErrImagePull/.test(problem))
    return "load airlock's images into the nodes: set AIRLOCK_K8S_LOAD_IMAGE (e.g. kind load docker-image {image})";
  return undefined;
}
