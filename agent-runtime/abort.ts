/**
 * A stop that came before anyone listened still counts. `signal.addEventListener("abort")` never
 * fires for a signal that has already aborted, and the runner's SIGTERM can arrive while an agent
 * is still connecting: a consumer that listened only afterwards would wait for the SIGKILL, losing
 * its clean exit (a discovery card cleared, a goodbye said, output flushed). Everything in the
 * runtime that waits on a signal goes through here.
 */

/** Call `fn` once when `signal` aborts, or soon if it already has; returns what stops listening. */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    let cancelled = false;
    queueMicrotask(() => cancelled || fn());
    return () => (cancelled = true);
  }
  signal.addEventListener("abort", fn, { once: true });
  return () => signal.removeEventListener("abort", fn);
}

/** Resolves when `signal` aborts (at once if it already has); never rejects. */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => onAbort(signal, resolve));
}
