/**
 * Gate containers serve images not built from the agent image (those gate themselves).
 * One gate pool per engine, gate image and network in this process. By default one gate is kept
 * ready for the next run (AIRLOCK_GATE_POOL=0 turns that off; the CLI's single `run` does). A gate
 * nobody takes exits after 30 s and the engine removes it; `closeGatePools()` removes them at once.
 */
import { randomBytes } from "node:crypto";
import type Docker from "dockerode";
import { LABEL, ownerId } from "../docker/labels.js";
import { gateSpec } from "../run/container-spec.js";
import { GatePool } from "./gate-container.js";

export const WARM_GATE_PREFIX = "airlock-warm-";
const IDLE_SECONDS = 30;
const pools = new Map<string, GatePool>();
let defaultSize = Number(process.env.AIRLOCK_GATE_POOL ?? 1);

/** How many gates to keep ready between runs (0: none). */
export function setGatePoolSize(size: number): void {
  defaultSize = size;
}

export function gatePool(docker: Docker, image: string, network: string): GatePool {
  const key = `${image}|${network}|${(docker.modem as unknown as { socketPath?: string })?.socketPath ?? ""}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new GatePool(
      docker,
      () =>
        gateSpec({
          name: `${WARM_GATE_PREFIX}${randomBytes(5).toString("hex")}`,
          image,
          network,
          idleSeconds: IDLE_SECONDS,
          labels: {
            [LABEL.managed]: "true",
            [LABEL.role]: "gate",
            [LABEL.run]: "pool",
            [LABEL.owner]: ownerId(),
            // The owner's liveness decides orphans; a taken gate holds only as long as its run allows.
            [LABEL.expires]: String(Date.now() + 7 * 24 * 3600 * 1000),
          },
        }),
      network,
      defaultSize,
    );
    pools.set(key, pool);
  }
  return pool;
}

/** Remove every gate kept ready by this process. */
export async function closeGatePools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.close()));
}

/** Resolves when every pool's gates being started are ready. */
export async function gatePoolsIdle(): Promise<void> {
  await Promise.all([...pools.values()].map((p) => p.idle()));
}
