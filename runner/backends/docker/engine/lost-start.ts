/**
 * The engine now and then loses a container's process between its create and its start (the start
 * fails with "cannot start a stopped process"; seen under load).
 * Every place airlock starts a container goes through here, so none of them turns that into a
 * failed run: the container is removed and a new one is created and started, once.
 */

/** True for the engine's "the process was lost before its start" failure. */
export function lostBeforeStart(err: unknown): boolean {
  return /cannot start a stopped process/.test(String((err as Error)?.message));
}

/**
 * `attempt` creates, sets up and starts one container, and removes it when its start fails; when
 * that failure was the engine losing the process, it runs once more. Any other failure, or a second
 * loss, is thrown as it is.
 */
export async function startReplacingLost<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (err) {
    if (!lostBeforeStart(err)) throw err;
    return attempt();
  }
}

/** Start `container`; a start that fails removes it and throws. */
export async function startOrRemove(container: {
  start(): Promise<unknown>;
  remove(): Promise<unknown>;
}): Promise<void> {
  try {
    await container.start();
  } catch (err) {
    // The start's failure is the one thrown; a container that resists removal is labelled and the orphan sweep removes it.
    await container.remove().catch(() => {});
    throw err;
  }
}
