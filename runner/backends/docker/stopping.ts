/**
 * Waiting for an agent's container to exit, and stopping it when it must: the policy's timeout or the caller's
 * cancel (SIGTERM, then a hard kill after the grace). While it
 * runs, the engine is pinged: a request that waits on an engine that went away does not always fail.
 */
import { DockerUnavailableError } from "../../errors.js";
import type { ContainerState, Engine, EngineContainer } from "./engine/engine.js";
import { explainDockerError } from "./engine/client.js";
import { withTimeout } from "../../util/with-timeout.js";
import type { RunStatus } from "../../run/result.js";
import type { StopRequest } from "../../run/run-stages.js";

export type { StopRequest };

export interface Stopper {
  /** Set once the run was asked to stop. */
  readonly requested: StopRequest | undefined;
  stop(reason: RunStatus, why?: string): void;
  dispose(): void;
}

/** After a sandbox's hard kill, how long its init has to report before the container itself is killed. */
export const HARD_KILL_REPORT_MS = 5000;

/**
 * SIGTERM now, a hard kill after `graceMs`; the first reason wins. The hard kill is SIGKILL to the
 * container, or (`hardKill: "SIGUSR2"`, a sandbox whose init holds /output) the init's signal to
 * kill every agent process at once while the container stays, then SIGKILL if it did not end.
 */
export function stopper(
  container: EngineContainer,
  graceMs: number,
  onStop: (request: StopRequest) => void,
  hardKill: "SIGKILL" | "SIGUSR2" = "SIGKILL",
): Stopper {
  let requested: StopRequest | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  return {
    get requested() {
      return requested;
    },
    stop(reason, why) {
      if (requested) return;
      requested = { reason, ...(why ? { why } : {}) };
      onStop(requested);
      // The container may have exited already: nothing left to stop.
      container.kill("SIGTERM").catch(() => {});
      killTimer = setTimeout(() => {
        // The container may have exited already: nothing left to stop.
        container.kill(hardKill).catch(() => {});
        if (hardKill !== "SIGKILL")
          // The container may have exited already: nothing left to stop.
          killTimer = setTimeout(() => container.kill("SIGKILL").catch(() => {}), HARD_KILL_REPORT_MS);
      }, graceMs);
    },
    dispose: () => clearTimeout(killTimer),
  };
}

/** Two failed pings in a row reject `gone` with a clear error. */
export function engineWatchdog(engine: Engine, everyMs = 2000): { gone: Promise<never>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let stopped = false;
  const gone = new Promise<never>((_, reject) => {
    const tick = () => {
      if (stopped) return;
      withTimeout(engine.ping(), 3000, "the engine did not answer a ping within 3 s")
        .then(() => (failures = 0))
        .catch((err: unknown) => {
          failures++;
          if (failures >= 2) {
            const cause = explainDockerError(err, engine.address);
            reject(
              new DockerUnavailableError(
                `lost the engine while the agent was running (${cause.message.replace(/^Docker engine not reachable: /, "").split("\n")[0]})`,
                "check that dockerd is running (docker info); once it is back, `airlock cleanup` removes what this run left",
                err,
              ),
            );
          }
        })
        .finally(() => {
          if (!stopped) timer = setTimeout(tick, everyMs);
        });
    };
    timer = setTimeout(tick, everyMs);
  });
  // Raced by the callers that need it; when nobody does, an engine lost after the run is no error.
  gone.catch(() => {});
  return {
    gone,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** The exit code from the engine: its wait, or (when the wait's connection was cut) its inspect. */
export async function engineExitCode(
  container: EngineContainer,
  waited: { StatusCode?: number } | undefined,
  gone: Promise<never>,
): Promise<{ code: number; state?: ContainerState }> {
  if (typeof waited?.StatusCode === "number") return { code: waited.StatusCode };
  const state = await Promise.race([container.inspect(), gone]);
  if (!state.running) return { code: state.exitCode, state };
  const again = await Promise.race([container.wait("not-running"), gone]);
  return { code: again.StatusCode ?? -1 };
}
