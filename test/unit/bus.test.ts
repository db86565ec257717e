import { describe, expect, it } from "vitest";
import { definePolicy, type PolicyError } from "../../runner/index.js";
import { aclRules } from "../../runner/bus/redis.js";
import { identityExpiry, identityName } from "../../runner/bus/kind.js";
import { patternProblem, resolvePattern, toRedisGlob, toRegExpSource } from "../../runner/bus/patterns.js";

describe("bus name patterns", () => {
  it("are exact names or prefixes ending in *, with {run}", () => {
    expect(patternProblem("events.{run}.*")).toBeUndefined();
    expect(patternProblem("jobs")).toBeUndefined();
    expect(patternProblem("a*b")?.message).toMatch(/not at the end/);
    expect(patternProblem("*")?.message).toMatch(/every name/);
    expect(patternProblem("{agent}.x")).toBeUndefined();
    expect(patternProblem("{user}.x")?.message).toMatch(/placeholder other than \{run\} and \{agent\}/);
    expect(resolvePattern("inbox:{agent}:{run}", "r-1", "bob").name).toBe("inbox:bob:r-1");
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
    expect(rules).toEqual(
      expect.arrayContaining([
        "resetkeys",
        "resetchannels",
        "-@all",
        "~mine:R:*",
        "%R~shared:*",
        "&ev:R",
        "+@read",
        "+@write",
        "+publish",
      ]),
    );
    expect(rules).not.toContain("+subscribe");
    // Whatever comes before, these come last.
    const tail = rules.slice(rules.indexOf("-@admin"));
    expect(tail).toEqual(
      expect.arrayContaining([
        "-@admin",
        "-@dangerous",
        "-@scripting",
        "-function",
        "-flushdb",
        "-scan",
        "-keys",
        "-select",
        "-migrate",
        "-monitor",
      ]),
    );
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
    const p = definePolicy({
      name: "p",
      network: { allowedEndpoints: ["localhost:6379", "localhost:5672"] },
      bus: { redis: { publish: ["e"] } },
    });
    expect(p.bus.grants).toEqual([
      {
        kind: "redis",
        endpoint: expect.objectContaining({ raw: "localhost:6379" }),
        env: "REDIS_URL",
        grant: { publish: ["e"] },
      },
    ]);
    expect(
      definePolicy({
        name: "p",
        network: { allowedEndpoints: ["10.0.0.5:7000"] },
        bus: { redis: { endpoint: "10.0.0.5:7000", env: "CACHE_URL" } },
      }).bus.grants[0],
    ).toMatchObject({ env: "CACHE_URL", endpoint: { port: 7000 } });
  });

  it("names the field and the fix when the broker is not reachable, the variable is taken, or a name is not a pattern", () => {
    expect(problems({ bus: { redis: { publish: ["e"] } } })).toEqual([
      "bus.redis: names no endpoint, and network.allowedEndpoints has none on port 6379 | set bus.redis.endpoint to the broker's host:port, and list it in network.allowedEndpoints",
    ]);
    expect(
      problems({ network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: { endpoint: "localhost:6380" } } }),
    ).toEqual([
      "bus.redis.endpoint: localhost:6380 is not in network.allowedEndpoints, so the agent could not reach it | add localhost:6380 to network.allowedEndpoints",
    ]);
    expect(
      problems({
        network: { allowedEndpoints: ["localhost:6379"] },
        env: { set: { REDIS_URL: "redis://x" } },
        bus: { redis: {} },
      }),
    ).toEqual([
      "env.set: REDIS_URL is set by bus.redis with the run's own credentials | remove REDIS_URL from env.set",
    ]);
    expect(
      problems({ network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: { keys: { write: ["a*b"] } } } })[0],
    ).toMatch(/^bus\.redis\.keys\.write\[0\]: "a\*b" has a \* that is not at the end/);
    expect(
      problems({ network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: { channels: ["x"] } } })[0],
    ).toMatch(/^bus\.redis\.channels: unknown key "channels"/);
  });
});

describe("RabbitMQ permissions", () => {
  it("configure only consume prefixes (never a queue named exactly), write only the run's exchange and named exchanges, read only consumed queues", async () => {
    const { rabbitmqPermissions } = await import("../../runner/bus/rabbitmq.js");
    const p = rabbitmqPermissions(
      {
        queues: { consume: ["tasks.{run}.*", "jobs.{run}"], publish: ["results.{run}"] },
        exchanges: { publish: ["events"] },
      },
      "R1",
      "airlock.airlock-x-1",
    );
    expect(p).toEqual({
      configure: "^(tasks\\.R1\\..*)$",
      write: "^(events|airlock\\.airlock-x-1)$",
      read: "^(tasks\\.R1\\..*|jobs\\.R1)$",
      publishQueues: ["results.R1"],
      consumeQueues: ["jobs.R1"],
    });
    // A publisher gets no configure at all on what it publishes to.
    expect(new RegExp(p.configure).test("results.R1")).toBe(false);
    expect(new RegExp(p.configure).test("jobs.R1")).toBe(false);
    // Nothing granted: nothing matches (never the default exchange).
    const none = rabbitmqPermissions({}, "R1", "airlock.x");
    expect(none.read).toBe("^$");
    expect(new RegExp(none.write).test("amq.default")).toBe(false);
    expect(new RegExp(none.write).test("")).toBe(false);
  });

  it("queues to publish to are exact names", () => {
    expect(() =>
      definePolicy({
        name: "p",
        network: { allowedEndpoints: ["localhost:5672"] },
        bus: { rabbitmq: { queues: { publish: ["tasks.*"] } } },
      }),
    ).toThrow(/is a prefix; queues to publish to are named exactly/);
  });
});

describe("Kafka ACLs", () => {
  it("grant WRITE/READ and DESCRIBE on the topics, CREATE only when asked, READ/DESCRIBE on the groups, literal or prefixed", async () => {
    const { kafkaAcls } = await import("../../runner/bus/kafka.js");
    const acls = kafkaAcls(
      { topics: { produce: ["events-{run}"], consume: ["events-{run}", "shared.*"] }, groups: ["g-{run}"] },
      "R",
      "User:u",
    );
    const short = acls.map(
      (a) =>
        `${a.resourceType}:${a.resourceName}:${a.resourcePatternType === 4 ? "prefixed" : "literal"}:${a.operation}`,
    );
    expect(short).toEqual([
      "2:events-R:literal:4",
      "2:events-R:literal:8",
      "2:events-R:literal:3",
      "2:shared.:prefixed:3",
      "2:shared.:prefixed:8",
      "3:g-R:literal:3",
      "3:g-R:literal:8",
    ]);
    expect(acls.every((a) => a.principal === "User:u" && a.host === "*" && a.permissionType === 3)).toBe(true);
    expect(kafkaAcls({ topics: { produce: ["t"], create: true } }, "R", "User:u").map((a) => a.operation)).toEqual([
      4, 8, 5,
    ]);
  });
});

describe("SCRAM credentials", () => {
  it("are PBKDF2-HMAC-SHA512 over the password and salt (RFC 5802 test shape, 4096 iterations)", async () => {
    const { saltedPassword } = await import("../../runner/bus/kafka-scram.js");
    const { pbkdf2Sync } = await import("node:crypto");
    const salt = Buffer.from("salt");
    expect(saltedPassword("pencil", salt)).toEqual(pbkdf2Sync("pencil", salt, 4096, 64, "sha512"));
    expect(saltedPassword("pencil", salt)).toHaveLength(64);
  });
});

describe("Redis ACL LOG", () => {
  it("becomes denials with the policy line to add, for this identity only", async () => {
    const { deniedFromAclLog } = await import("../../runner/bus/redis.js");
    const entry = (reason: string, object: string, user: string, cmd: string) => [
      "count",
      2,
      "reason",
      reason,
      "context",
      "toplevel",
      "object",
      object,
      "username",
      user,
      "age-seconds",
      "1.0",
      "client-info",
      `id=1 addr=172.18.0.2:1 cmd=${cmd} user=${user}`,
    ];
    const log = [
      entry("key", "billing:secrets", "me", "get"),
      entry("command", "config|get", "me", "config|get"),
      entry("channel", "other", "me", "publish"),
      entry("key", "x", "someone-else", "get"),
    ];
    const now = Date.parse("2026-12-04T10:00:00Z");
    const time = "2026-12-04T09:59:59.000Z";
    expect(deniedFromAclLog(log, "me", now)).toEqual([
      {
        broker: "redis",
        what: "key",
        name: "billing:secrets",
        command: "get",
        action: "get",
        count: 2,
        fix: "add a pattern for billing:secrets to bus.redis.keys.read (or keys.write)",
        time,
        allow: { path: ["bus", "redis", "keys", "read"], value: "billing:secrets" },
      },
      {
        broker: "redis",
        what: "command",
        name: "config|get",
        command: "config|get",
        action: "command",
        count: 2,
        fix: "none: never granted to agents",
        never: true,
        time,
      },
      {
        broker: "redis",
        what: "channel",
        name: "other",
        command: "publish",
        action: "publish",
        count: 2,
        fix: "add other to bus.redis.publish",
        time,
        allow: { path: ["bus", "redis", "publish"], value: "other" },
      },
    ]);
  });
});

describe("NATS permissions", () => {
  it("grant the subjects as NATS wildcards, the run's own inbox always, and deny publishing outright when nothing is granted", async () => {
    const { natsPermissions, inboxPrefix } = await import("../../runner/bus/nats.js");
    expect(
      natsPermissions(
        { publish: ["jobs.{run}.*", "inbox.{run}.*.{agent}"], subscribe: ["events"], reply: true },
        "r1",
        "airlock-x-1",
        "bob",
      ),
    ).toEqual({
      publish: { allow: ["jobs.r1.>", "inbox.r1.*.bob"] },
      subscribe: { allow: ["events", "_INBOX_airlock-x-1.>"] },
      allow_responses: { max: 1 },
    });
    // An empty allow list would allow everything.
    expect(natsPermissions({ subscribe: ["a.*"] }, "r1", "airlock-x-1")?.publish).toEqual({ deny: [">"] });
    expect(inboxPrefix("airlock-a.b-1")).toBe("_INBOX_airlock-a_b-1");
  });
});

describe("MQTT ACLs", () => {
  it("allow publishing to and subscribing within exactly the topics, as MQTT wildcards", async () => {
    const { mqttAcls } = await import("../../runner/bus/mqtt.js");
    expect(mqttAcls({ publish: ["rooms/{run}/*/{agent}"], subscribe: ["cards/*"] }, "r1", "bob")).toEqual([
      { acltype: "publishClientSend", topic: "rooms/r1/+/bob", allow: true },
      { acltype: "subscribePattern", topic: "cards/#", allow: true },
      { acltype: "unsubscribePattern", topic: "cards/#", allow: true },
    ]);
  });
});

describe("subjects and topics in a policy", () => {
  const issue = (bus: Record<string, unknown>) => {
    try {
      definePolicy({ name: "p", network: { allowedEndpoints: ["localhost:4222", "localhost:1883"] }, bus } as never);
    } catch (e) {
      return (e as PolicyError).issues[0];
    }
    return undefined;
  };
  it("take whole-token prefixes only, never the brokers' wildcards, system names or inboxes", () => {
    expect(issue({ nats: { publish: ["jobs.{run}.*"] }, mqtt: { publish: ["rooms/{run}/*"] } })).toBeUndefined();
    expect(
      issue({ nats: { publish: ["inbox.{run}.*.{agent}"] }, mqtt: { subscribe: ["rooms/{run}/*/{agent}"] } }),
    ).toBeUndefined();
    expect(issue({ nats: { publish: ["jobs*"] } })).toMatchObject({
      field: "bus.nats.publish[0]",
      message: '"jobs*": * stands for a whole token, not part of one ("jobs*")',
    });
    expect(issue({ nats: { publish: ["*.*"] } })?.message).toMatch(/every name/);
    expect(issue({ nats: { subscribe: ["jobs.>"] } })?.message).toMatch(/broker's own wildcards/);
    expect(issue({ nats: { subscribe: ["$SYS.x"] } })?.message).toMatch(/system names/);
    expect(issue({ nats: { subscribe: ["_INBOX.x"] } })?.message).toMatch(/is an inbox/);
    expect(issue({ mqtt: { subscribe: ["rooms/+/a"] } })?.message).toMatch(/broker's own wildcards/);
    expect(issue({ mqtt: { publish: ["$CONTROL/dynamic-security/v1"] } })?.message).toMatch(/system names/);
    expect(issue({ mqtt: { publish: ["rooms*"] } })?.fix).toBe(
      "write /*/ for one token or end with /* for the rest, e.g. rooms/{run}/*",
    );
  });
});

describe("a broker the agent cannot log in to", () => {
  it("is said before the start: airlock's local Redis reached without bus.redis, with the lines to add; not with a grant, not for a broker it does not run", async () => {
    const { loginWarnings } = await import("../../runner/bus/rights.js");
    const sources = {
      env: {},
      local: { redis: { host: "127.0.0.1", port: 6379, user: "airlock-admin", password: "x" } },
    };
    const bare = definePolicy({
      name: "p",
      network: { allowedEndpoints: ["localhost:6379"] },
      env: { allow: ["REDIS_URL"] },
    });
    const [warning, ...rest] = loginWarnings(bare, sources);
    expect(rest).toEqual([]);
    expect(warning).toMatch(
      /airlock's local redis at localhost:6379, .* will not be able to log in\. Add bus: \{ redis: \{\} \}.*REDIS_URL/,
    );
    expect(
      loginWarnings(
        definePolicy({ name: "p", network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: {} } }),
        sources,
      ),
    ).toEqual([]);
    expect(
      loginWarnings(definePolicy({ name: "p", network: { allowedEndpoints: ["localhost:7000"] } }), sources),
    ).toEqual([]);
  });
});
