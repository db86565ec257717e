/**
 * Sealed messages without a broker: what a recipient accepts and refuses, and what the sealed form
 * shows (only metadata).
 */
import { describe, expect, it } from "vitest";
import { Keyring, type SealedMessageError } from "../../agent-runtime/bus/sealed.js";

function pair() {
  const alice = new Keyring("alice");
  const bob = new Keyring("bob");
  alice.trust(bob.publicKeys());
  bob.trust(alice.publicKeys());
  return { alice, bob };
}

const reason = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as SealedMessageError).reason;
  }
  return "accepted";
};

describe("sealed messages", () => {
  it("open for the recipient only, and show nothing of the body", () => {
    const { alice, bob } = pair();
    const sealed = alice.seal("bob", { task: "the secret plan", n: 42 });
    expect(JSON.stringify(sealed)).not.toContain("secret plan");
    expect(Object.keys(sealed).sort()).toEqual(["ct", "eph", "from", "id", "iv", "salt", "sig", "to", "ts", "v"]);
    expect(bob.open(sealed)).toEqual({ task: "the secret plan", n: 42 });
    const carol = new Keyring("carol");
    carol.trust(alice.publicKeys());
    expect(reason(() => carol.open(sealed))).toBe("not-for-me");
  });

  it("refuse a replay, any altered byte, a forged sender, an unknown sender and an old message", () => {
    const { alice, bob } = pair();
    const sealed = alice.seal("bob", "hello");
    expect(bob.open(sealed)).toBe("hello");
    expect(reason(() => bob.open(sealed))).toBe("replayed");
    const fresh = alice.seal("bob", "hello again");
    const ct = Buffer.from(fresh.ct, "base64");
    ct[0]! ^= 1;
    expect(reason(() => bob.open({ ...fresh, ct: ct.toString("base64") }))).toBe("bad-signature");
    expect(reason(() => bob.open({ ...fresh, ts: fresh.ts + 1 }))).toBe("bad-signature");
    // Mallory has bob's trust under her own name only: she cannot sign as alice.
    const mallory = new Keyring("mallory");
    mallory.trust(bob.publicKeys());
    bob.trust(mallory.publicKeys());
    expect(reason(() => bob.open({ ...mallory.seal("bob", "I am alice"), from: "alice" }))).toBe("bad-signature");
    const stranger = new Keyring("stranger");
    stranger.trust(bob.publicKeys());
    expect(reason(() => bob.open(stranger.seal("bob", "hi")))).toBe("unknown-sender");
    expect(reason(() => bob.open(alice.seal("bob", "late"), Date.now() + 10 * 60_000))).toBe("expired");
    expect(bob.open(fresh)).toBe("hello again");
  });

  it("use a new ephemeral key for every message", () => {
    const { alice } = pair();
    expect(alice.seal("bob", "x").eph).not.toBe(alice.seal("bob", "x").eph);
  });
});
