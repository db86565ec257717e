/**
 * What one Docker run created and must release, whatever happened: each start records a thing here
 * the moment it exists (start/context.ts), and the run's dispose() releases them in the order the
 * engine needs (a volume's users before the container that owns it).
 */
import { withTimeout } from "../../util/with-timeout.js";
import type { EngineContainer } from "./engine/engine.js";
import type { EgressGate } from "./gate/egress-gate.js";
import { removeSandboxFolder, type SandboxFolder } from "./sandbox/folder.js";

export class HeldResources {
  /** The agent's container (or sandbox). */
  container?: EngineContainer;
  /** The output keeper (runs whose container ends with the agent): it holds /output until copied out. */
  keeper?: EngineContainer;
  /** The gate container, when it holds this run's /output (runs with the default output limits). */
  outputHolder?: EngineContainer;
  gate?: EgressGate;
  /** A pooled sandbox's folder. */
  folder?: SandboxFolder;

  /**
   * Everything, in the background: `background` takes work the runner waits for before it closes.
   * Bounded: if the engine does not answer, the orphan sweep removes what is left later.
   */
  release(background: (work: Promise<unknown>) => void): void {
    // The agent's processes are gone (or killed by the forced removal); the container itself is removed in the background.
    const agentGone = this.container
      ? withTimeout(this.container.remove(), 60_000, "the engine did not remove the agent's container within 60 s")
      : Promise.resolve();
    background(agentGone);
    // The keeper after the agent's container, which uses its volume (removed with the keeper).
    const keeper = this.keeper;
    if (keeper)
      background(
        agentGone
          // However the agent's container went, what follows (removing the keeper) must run.
          .catch(() => {})
          .then(() => withTimeout(keeper.remove(), 60_000, "the engine did not remove the output keeper within 60 s")),
      );
    // The host rules only ever matched this container's address, which is gone: no need to wait. A
    // gate that holds this run's /output goes after the agent's container, which uses its volume (a
    // volume still in use stays behind when its container is removed).
    const gate = this.gate;
    if (gate)
      // However the agent's container went, the gate holding its /output goes after it.
      background(this.outputHolder ? agentGone.catch(() => {}).then(() => gate.dispose()) : gate.dispose());
    if (this.folder) background(removeSandboxFolder(this.folder));
  }
}
