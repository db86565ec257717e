/** The runtime's stop helpers: a stop that came before anyone listened still counts, once. */
import { describe, expect, it } from "vitest";
import { onAbort, whenAborted } from "../../agent-runtime/abort.js";

describe("a stop", () => {
  it("reaches a listener added after it came, once, and not one that stopped listening first", async () => {
    const stop = new AbortController();
    stop.abort();
    const calls: string[] = [];
    onAbort(stop.signal, () => calls.push("late"));
    const off = onAbort(stop.signal, () => calls.push("withdrawn"));
    off();
    await whenAborted(stop.signal);
    expect(calls).toEqual(["late"]);
  });

  it("reaches a listener added before it came, once, and waits for it otherwise", async () => {
    const stop = new AbortController();
    const calls: string[] = [];
    onAbort(stop.signal, () => calls.push("early"));
    const off = onAbort(stop.signal, () => calls.push("withdrawn"));
    off();
    let resolved = false;
    const waiting = whenAborted(stop.signal).then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(resolved).toBe(false);
    stop.abort();
    stop.abort();
    await waiting;
    expect(calls).toEqual(["early"]);
    expect(onAbort(undefined, () => calls.push("never"))).toBeTypeOf("function");
  });
});
