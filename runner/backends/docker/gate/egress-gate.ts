/**
 * The egress gate of one run, behind one interface. Which implementation a run gets is decided here
 * and only here, from what airlock built (never from anything an image carries):
 *
 * - no network: the policy disables it; the container has no interface at all;
 * - init gate: images airlock built itself (their IDs are recorded, images/trust.ts) carry airlock's
 *   init, which loads the rules in the container's own namespace and drops NET_ADMIN before the agent;
 * - gate container: every other image, derived from ours or not: a container of airlock's gate image
 *   holds the namespace with the rules in force, and the agent's container joins it with no
 *   capabilities at all.
 *
 * Either way the runner reads the rules back from outside the container and compares them with what
 * it sent before the agent may start (verify.ts), and a root runner reads the denied-connection
 * tables itself from the kernel after the agent exits.
 */
import type { Duplex } from "node:stream";
import type { DeniedConnection } from "../../../gate/denied.js";
import type { AgentNetwork } from "../container-spec.js";
import type { ContainerState, EngineContainer } from "../engine/engine.js";

export interface EgressGate {
  /** How the agent's container is attached to the network. */
  readonly network: AgentNetwork;
  /** The gate talks to the container's entrypoint on stdin (the init reads its rules there). */
  readonly usesStdin: boolean;
  /** Takes the gate's own lines out of the agent's output (true: the line was the gate's). */
  readonly intercept?: (line: string, stream: "stdout" | "stderr") => boolean;
  /** Resolves once every line the agent wrote has arrived (the gate marks the end of both streams). */
  readonly outputComplete?: Promise<void>;
  /** The agent's exit code as the gate saw it (faster than the engine's wait), when the gate sees it. */
  readonly exited?: Promise<number>;
  /** Before the container starts: what its entrypoint reads first (the init's rules), already in its stdin. */
  beforeStart?(stdio: Duplex): void;
  /**
   * After the agent's container started and before any agent code runs: rules in force and checked
   * from outside, the host side open for this container. Rejects (GateError) if any of it fails.
   */
  open(container: EngineContainer, stdio: Duplex, stopped: Promise<unknown>, start?: SandboxStart): Promise<void>;
  /** After the agent exited: what the gate refused. Throws the gate's own error if it failed before the agent. */
  collect(exit: { code: number; stderr: string; state?: ContainerState }): Promise<DeniedConnection[]>;
  /**
   * While the agent runs: what the gate refused so far — the egress proxy's refusals always, the
   * kernel's tables where the runner can read them from the host (a root runner); never throws.
   */
  refusedSoFar(): Promise<DeniedConnection[]>;
  /** Release the namespace, the host rules and anything else the gate holds (idempotent, never throws). */
  dispose(): Promise<void>;
}

/** What a sandbox's init gets once its rules are checked (init gate only). */
export interface SandboxStart {
  /** The start line: the agent's command line and variables (gate/protocol.ts goLine). */
  line(): Promise<string>;
  /** The container's state, when the caller just inspected it (a claimed pooled sandbox). */
  state?: ContainerState;
}

/** No network: nothing to gate. */
export const noNetworkGate: EgressGate = {
  network: { mode: "none" },
  usesStdin: false,
  open: async () => {},
  collect: async () => [],
  refusedSoFar: async () => [],
  dispose: async () => {},
};
