/**
 * Fuzzing the policy parser: whatever the input, parsePolicy returns a Policy or throws a PolicyError
 * whose every problem names the file and says what is wrong — never another kind of exception, never
 * a crash, and never a policy that lets through something the schema forbids.
 */
import fc from "fast-check";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { parsePolicy, PolicyError, type Policy } from "../../runner/index.js";

function check(text: string): Policy | PolicyError {
  try {
    return parsePolicy(text, "fuzz.yaml");
  } catch (err) {
    if (!(err instanceof PolicyError))
      throw new Error(`non-PolicyError for ${JSON.stringify(text)}: ${(err as Error).stack}`);
    for (const issue of err.issues) {
      expect(issue.file).toBe("fuzz.yaml");
      expect(issue.message.length).toBeGreaterThan(0);
    }
    return err;
  }
}

const keys = [
  "name",
  "network",
  "env",
  "packages",
  "timeoutSeconds",
  "resources",
  "allowedEndpoints",
  "allowed_endpoints",
  "disabled",
  "allow",
  "set",
  "memory",
  "cpus",
  "pids",
  "output",
  "x",
];
const scalar = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom("localhost:6379", "redis", "*:1", "10.0.0.1:99999", "ioredis@5.9.2", "512m", "a b", "::1"),
);
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: "small" },
    scalar,
    fc.array(tie("node"), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...keys), tie("node"), { maxKeys: 5 }),
  ),
})).node;

describe("policy parser fuzz", () => {
  it("never throws anything but a PolicyError on random text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => void check(text)),
      { numRuns: 2000 },
    );
  });

  it("never throws anything but a PolicyError on random YAML structures", () => {
    fc.assert(
      fc.property(value, (v) => void check(stringify(v))),
      { numRuns: 3000 },
    );
  });

  it("every policy it accepts has valid endpoints and limits", () => {
    const endpoint = fc
      .oneof(
        fc.constantFrom("localhost", "127.0.0.1", "10.1.2.3", "kafka.example.com", "*", "", "a_b", "300.1.1.1"),
        fc.domain(),
        fc.ipV4(),
      )
      .chain((host) => fc.integer({ min: -5, max: 70000 }).map((port) => `${host}:${port}`));
    fc.assert(
      fc.property(fc.array(endpoint, { maxLength: 4 }), fc.integer({ min: -10, max: 1e6 }), (endpoints, timeout) => {
        const result = check(
          stringify({ name: "f", network: { allowedEndpoints: endpoints }, timeoutSeconds: timeout }),
        );
        if (result instanceof PolicyError) return;
        for (const e of result.network.allowedEndpoints) {
          expect(e.port).toBeGreaterThanOrEqual(1);
          expect(e.port).toBeLessThanOrEqual(65535);
          expect(e.host).not.toContain("*");
        }
        expect(result.timeoutSeconds).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
  });

  it("mutations of a valid policy either parse or are located", () => {
    const valid =
      "name: hello\nnetwork:\n  allowedEndpoints:\n    - localhost:6379\nenv:\n  allow: [REDIS_URL]\npackages:\n  - ioredis@5.9.2\ntimeoutSeconds: 60\nresources:\n  memory: 256m\n";
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.string({ maxLength: 3 }), fc.nat(3), (at, insert, drop) => {
        const result = check(valid.slice(0, at) + insert + valid.slice(at + drop));
        if (result instanceof PolicyError)
          for (const i of result.issues) expect(i.line === undefined || i.line >= 1).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
