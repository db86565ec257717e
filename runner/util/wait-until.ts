/**
 * One way to wait for a condition that is polled (a file, a container state, an idle pool), with an
 * injectable clock so that unit tests do not sleep. Event-driven waits should use events instead.
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep: (ms) => sleep(ms) };

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  clock?: Clock;
  /** The error thrown on timeout (default: a plain Error naming the timeout). */
  onTimeout?: () => Error;
}

/** Resolves with the first truthy value `check` returns; rejects when `timeoutMs` passes first. */
export async function waitUntil<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions,
): Promise<T> {
  const clock = options.clock ?? systemClock;
  const deadline = clock.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (clock.now() >= deadline)
      throw options.onTimeout?.() ?? new Error(`condition not met within ${options.timeoutMs} ms`);
    await clock.sleep(options.intervalMs ?? 10);
  }
}
