/**
 * A run's taps on its brokers' connections: one per broker whose kind reads refusals off the wire
 * (BusKind.wireTap: MQTT) and that the gate reaches through a forwarder on the host (a localhost
 * endpoint). Made once the policy is known, before the gate opens and the identities are minted;
 * the gate's forwarder for the broker's port feeds it, the broker's identity reports from it.
 */
import type { Endpoint } from "../policy/endpoint.js";
import type { TapRun, WireTap } from "./kind.js";
import { BUS_KINDS } from "./registry.js";
import type { BusGrant } from "./rights.js";

export class WireTaps {
  private readonly byPort = new Map<number, WireTap>();

  constructor(grants: BusGrant[], run: TapRun) {
    for (const g of grants) {
      const kind = BUS_KINDS[g.kind];
      if (!kind.wireTap || g.endpoint.kind !== "loopback") continue;
      this.byPort.set(g.endpoint.port, kind.wireTap(g.grant as never, run));
    }
  }

  /** The tap for the broker at `endpoint`, when there is one. */
  forEndpoint(endpoint: Endpoint): WireTap | undefined {
    return endpoint.kind === "loopback" ? this.byPort.get(endpoint.port) : undefined;
  }

  /** The tap for the gate's route to the host's loopback port `port`. */
  onPort(port: number): WireTap | undefined {
    return this.byPort.get(port);
  }
}
