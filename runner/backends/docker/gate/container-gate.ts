/**
 * The gate-container implementation of EgressGate, for every image airlock did not build: the
 * gate (from a pool, gate-container.ts) already has the rules in force when acquired; they are read
 * back from outside before the agent's container joins its namespace, and the host side is opened
 * for the gate's address (the agent shares it).
 */
import type { EgressGate } from "./egress-gate.js";
import { parseDeniedReport, type DeniedConnection } from "../../../gate/denied.js";
import type { GatePool, StartedGate, TakenGate } from "./gate-container.js";
import type { HostSide } from "./host-side.js";
import { canInspectFromHost, hostInterfaceOf, readDeniedTables } from "./netns.js";
import type { ExpectedRules, Verifier } from "./verify.js";

export interface ContainerGateInput {
  pool: GatePool;
  rules: ExpectedRules;
  holdSeconds: number;
  /** A gate already taken from the pool (it was ready when the run chose this path); its taker tops the pool up, once runs stop starting. */
  taken?: TakenGate;
  hostSide: HostSide;
  verifier: Verifier;
  /** The gate's name once it belongs to this run. */
  name: string;
  /** Where the gate's removal goes once the run is over (the runner tracks background work). */
  background: (work: Promise<unknown>) => void;
}

export class ContainerEgressGate implements EgressGate {
  readonly usesStdin = false;
  readonly network;

  private constructor(
    private readonly gate: StartedGate,
    private readonly input: ContainerGateInput,
  ) {
    this.network = { mode: "gate-container" as const, gateId: gate.id };
  }

  /** A gate with the rules in force and checked, and the host side open for it. */
  static async acquire(input: ContainerGateInput): Promise<ContainerEgressGate> {
    const gate = await input.pool.acquire({ ...input.rules, holdSeconds: input.holdSeconds }, input.taken);
    const self = new ContainerEgressGate(gate, input);
    try {
      // The name is for people reading docker ps; the run does not depend on it.
      void gate.container.rename({ name: input.name }).catch(() => {});
      // The read-back and the host side at once (no agent is in the namespace until both are done).
      const allowed = (async () => {
        const hostInterface = canInspectFromHost() ? await hostInterfaceOf(gate.pid) : undefined;
        await input.hostSide.allow({ ip: gate.ip, mac: gate.mac, ...(hostInterface ? { hostInterface } : {}) });
      })();
      // Awaited before the start line; until then a rejection must not count as unhandled.
      allowed.catch(() => {});
      await Promise.all([input.verifier.verify({ pid: gate.pid, containerId: gate.id }, input.rules), allowed]);
      return self;
    } catch (err) {
      await self.dispose();
      throw err;
    }
  }

  async open(): Promise<void> {}

  async collect(): Promise<DeniedConnection[]> {
    const report = canInspectFromHost() ? await readDeniedTables(this.gate.pid) : await this.gate.report();
    return [...parseDeniedReport(report), ...this.input.hostSide.denials()];
  }

  async refusedSoFar(): Promise<DeniedConnection[]> {
    // The gate container prints its tables when asked after the run; mid-run, a root runner reads the kernel's.
    const tables = canInspectFromHost() ? await readDeniedTables(this.gate.pid).catch(() => "") : "";
    return [...parseDeniedReport(tables), ...this.input.hostSide.denials()];
  }

  private disposed = false;
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.gate.detach();
    // Gates are removed by the engine once stopped (AutoRemove): the kill is enough, and it spares
    // the run the bridge teardown.
    this.input.background(
      this.gate.container.kill({ signal: "SIGKILL" }).catch(() => this.gate.container.remove({ force: true, v: true })),
    );
    await this.input.hostSide.close();
  }
}
