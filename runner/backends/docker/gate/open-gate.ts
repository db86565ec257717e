/**
 * Picks and sets up a run's egress gate (egress-gate.ts says which and why): what the policy makes
 * every backend enforce (gate/enforce.ts: names resolved on the host, /etc/hosts, the rules), on the
 * airlock bridge, with its host side.
 */
import { writeFile } from "node:fs/promises";
import type { AirlockNetwork } from "../network.js";
import type { Policy } from "../../../policy/index.js";
import { ContainerEgressGate } from "./container-gate.js";
import { noNetworkGate, type EgressGate } from "./egress-gate.js";
import type { GatePool, TakenGate } from "./gate-container.js";
import { openHostSide, type LoopbackMode } from "./host-side.js";
import { InitEgressGate } from "./init-gate.js";
import { enforcementFor, gateSummary } from "../../../gate/enforce.js";
import type { Resolver } from "../../../gate/plan.js";
import type { WireTaps } from "../../../bus/wire-taps.js";
import type { TerminatingInput } from "../../../run/https-egress.js";
import type { Verifier } from "./verify.js";

export interface GateServices {
  /** The airlock bridge agents attach to. */
  network(): Promise<AirlockNetwork>;
  loopback: LoopbackMode;
  gatePool(image: string, network: string): GatePool;
  verifier(gateImage: string, labels: Record<string, string>): Verifier;
  background(work: Promise<unknown>): void;
}

export interface GateRequest {
  policy: Policy;
  /** The agent's container gates itself: a sandbox of an image airlock built (its init), not a gate container. */
  selfGated: boolean;
  gateImage: string;
  user: { uid: number; gid: number };
  runId: string;
  /** Where the agent's /etc/hosts is written. */
  hostsPath: string;
  /** How long a gate container holds the namespace at most. */
  holdSeconds: number;
  /** A gate container the caller took while it was ready; the pool is topped up by the caller, not at once. */
  readyGate?: TakenGate;
  labels: Record<string, string>;
  resolver?: Resolver;
  /** For HTTPS the gate terminates: the runner's CA and the headers' values. */
  terminating?: TerminatingInput;
  /** The run's taps on its brokers' connections: their ports go through a forwarder that feeds them. */
  taps?: WireTaps;
  onPhase?: (message: string) => void;
  /** Startup stages of the in-container gate, as they end. */
  onMark?: (stage: string) => void;
}

export async function openEgressGate(services: GateServices, req: GateRequest): Promise<EgressGate> {
  const { policy } = req;
  if (!policy.network.disabled)
    req.onPhase?.(`${gateSummary(policy)}${req.selfGated ? "" : " (with a gate container)"}`);
  const enforcement = await enforcementFor(policy, req.resolver);
  await writeFile(req.hostsPath, enforcement.hostsFile, { mode: 0o644 });
  if (enforcement.disabled) return noNetworkGate;
  const bridge = await services.network();
  const hostSide = await openHostSide(services.loopback, bridge, enforcement.plan, {
    runId: req.runId,
    ...(req.resolver ? { resolver: req.resolver } : {}),
    ...(req.terminating ? { terminating: req.terminating } : {}),
    ...(req.taps ? { taps: req.taps } : {}),
  });
  const rules = enforcement.rules({
    address: bridge.gateway,
    ports: hostSide.gatewayPorts,
    ...(hostSide.https ? { https: hostSide.https } : {}),
  });
  const verifier = services.verifier(req.gateImage, req.labels);
  if (req.selfGated)
    return new InitEgressGate({
      rules,
      user: req.user,
      networkName: bridge.name,
      hostSide,
      verifier,
      ...(req.onMark ? { onMark: req.onMark } : {}),
    });
  try {
    return await ContainerEgressGate.acquire({
      pool: req.readyGate?.pool ?? services.gatePool(req.gateImage, bridge.name),
      rules,
      holdSeconds: req.holdSeconds,
      ...(req.readyGate ? { taken: req.readyGate } : {}),
      hostSide,
      verifier,
      name: `airlock-${req.runId}-gate`,
      background: (w) => services.background(w),
    });
  } catch (err) {
    await hostSide.close();
    throw err;
  }
}
