import { describe, expect, it } from "vitest";
import { definePolicy, PolicyError } from "../../runner/index.js";
import { aclRules } from "../../runner/bus/redis.js";
import { identityExpiry, identityName } from "../../runner/bus/kind.js";
import { patternProblem, resolvePattern, toRedisGlob, toRegExpSource } from "../../runner/bus/patterns.js";

describe("bus name patterns", () => {
  it("are exact names or prefixes ending in *, with {run}", () => {
    expect(patternProblem("events.{run}.*")).toBeUndefined();
    expect(patternProblem("jobs")).toBeUndefined();
    expect(patternProblem("a*b")?.message).toMatch(/not at the end/);
    expect(patternProblem("*")?.message).toMatch(/every name/);
    expect(patternProblem("{agent}.x")?.message).toMatch(/placeholder other than \{run\}/);
    const p = resolvePattern("q[1]:{run}:*", "r-1");
    expect(p).toEqual({ raw: "q[1]:{run}:*", name: "q[1]:r-1:", prefix: true });
    expect(toRedisGlob(p)).toBe("q\\[1\\]:r-1:*");
    expect(toRegExpSource([p, resolvePattern("tasks.{run}", "r-1")])).toBe("^(q\\[1\\]:r-1:.*|tasks\\.r-1)$");
  });

  it("identity names carry their expiry, so a sweep needs no ledger", () => {
    const name = identityName("consumer-1a2b3c4d", 1_800_000_000_500);
    expect(name).toBe("airlock-consumer-1a2b3c4d-1800000001");
    expect(identityExpiry(name)).toBe(1_800_000_001_000);
    expect(identityExpiry("airlock-admin")).toBeUndefined();
    expect(identityExpiry("default")).toBeUndefined();
  });
});

describe("Redis ACL rules", () => {
  it("grant the listed keys and channels with only the commands they need, and never the dangerous ones", () => {
    const rules = aclRules({ keys: { read: ["shared:*"], write: ["mine:{run}:*"] }, publish: ["ev:{run}"] }, "R");
    expect(rules).toEqual(expect.arrayContaining(["resetkeys", "resetchannels", "-@all", "~mine:R:*", "%R~shared:*", "&ev:R", "+@read", "+@write", "+publish"]));
    expect(rules).not.toContain("+subscribe");
    // Whatever comes before, these come last.
    const tail = rules.slice(rules.indexOf("-@admin"));
    expect(tail).toEqual(expect.arrayContaining(["-@admin", "-@dangerous", "-@scripting", "-function", "-flushdb", "-scan", "-keys", "-select", "-migrate", "-monitor"]));
    const channelsOnly = aclRules({ subscribe: ["ev:*"] }, "R");
    expect(channelsOnly).not.toContain("+@write");
    expect(channelsOnly).not.toContain("+@read");
    expect(channelsOnly).toContain("+subscribe");
  });
});

describe("the bus section of a policy", () => {
  const problems = (input: object) => {
    try {
      definePolicy({ name: "p", ...input } as never);
      return [];
    } catch (e) {
      return (e as PolicyError).issues.map((i) => `${i.field}: ${i.message} | ${i.fix}`);
    }
  };

  it("finds its broker among the allowed endpoints, by the kind's port or by name", () => {
    const p = definePolicy({ name: "p", network: { allowedEndpoints: ["localhost:6379", "localhost:5672"] }, bus: { redis: { publish: ["e"] } } });
    expect(p.bus.grants).toEqual([{ kind: "redis", endpoint: expect.objectContaining({ raw: "localhost:6379" }), env: "REDIS_URL", grant: { publish: ["e"] } }]);
    expect(definePolicy({ name: "p", network: { allowedEndpoints: ["10.0.0.5:7000"] }, bus: { redis: { endpoint: "10.0.0.5:7000", env: "CACHE_URL" } } }).bus.grants[0]).toMatchObject({ env: "CACHE_URL", endpoint: { port: 7000 } });
  });

  it("names the field and the fix when the broker is not reachable, the variable is taken, or a name is not a pattern", () => {
    expect(problems({ bus: { redis: { publish: ["e"] } } })).toEqual(["bus.redis: names no endpoint, and network.allowedEndpoints has none on port 6379 | set bus.redis.endpoint to the broker's host:port, and list it in network.allowedEndpoints"]);
    expect(problems({ network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: { endpoint: "localhost:6380" } } })).toEqual(["bus.redis.endpoint: localhost:6380 is not in network.allowedEndpoints, so the agent could not reach it | add localhost:6380 to network.allowedEndpoints"]);
    expect(problems({ network: { allowedEndpoints: ["localhost:6379"] }, env: { set: { REDIS_URL: "redis://x" } }, bus: { redis: {} } })).toEqual(["env.set: REDIS_URL is set by bus.redis with the run's own credentials | remove REDIS_URL from env.set"]);
    expect(problems({ network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: { keys: { write: ["a*b"] } } } })[0]).toMatch(/^bus\.redis\.keys\.write\[0\]: "a\*b" has a \* that is not at the end/);
    expect(problems({ network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: { channels: ["x"] } } })[0]).toMatch(/^bus\.redis\.channels: unknown key "channels"/);
  });
});
