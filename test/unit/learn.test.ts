import { describe, expect, it } from "vitest";
import { anchored, generalize, learningPolicy, NOTHING, type Learnt } from "../../runner/learn/learn.js";
import { learnedYaml, lineDiff } from "../../runner/learn/learned-yaml.js";
import type { Refusal } from "../../runner/run/refusals.js";

const refusal = (over: Partial<Refusal>): Refusal => ({
  time: "2026-12-04T00:00:00.000Z",
  layer: "broker",
  kind: "redis",
  action: "publish",
  resource: "x",
  resourceType: "channel",
  count: 1,
  rule: "redis.channel.publish",
  fix: "",
  ...over,
});

describe("learning bus rights", () => {
  it("writes the run's and the agent's names back as {run} and {agent}, and a per-message id as *", () => {
    const tokens = { run: "pair-1a2b3c4d", agent: "worker" };
    expect(generalize("events:pair-1a2b3c4d", tokens)).toBe("events:{run}");
    expect(generalize("inbox.pair-1a2b3c4d.worker.*", tokens)).toBe("inbox.{run}.{agent}.*");
    expect(generalize("rpc:pair-1a2b3c4d:reply:26d85b5a-d09d-441e-a6ca-42f7cebefa93", tokens)).toBe(
      "rpc:{run}:reply:*",
    );
    expect(generalize("jobs:1764820000123", tokens)).toBe("jobs:*");
    expect(generalize("plain-name", tokens)).toBe("plain-name");
  });

  it("a learning run starts with the bus lists empty (Redis with a name that matches nothing), everything else as written", () => {
    const given = {
      name: "p",
      network: { allowedEndpoints: ["localhost:6379", "localhost:9092", "localhost:5672"] },
      bus: {
        redis: { env: "REDIS_URL", keys: { write: ["notes:{run}:*"] }, publish: ["a"] },
        kafka: { topics: { produce: ["t"], create: true }, groups: ["g"] },
        rabbitmq: { queues: { consume: ["q:{run}"] }, exchanges: { publish: ["x"] } },
        requireRights: true,
      },
    };
    const learnt: Learnt[] = [
      { path: ["bus", "redis", "publish"], value: "events:{run}", from: refusal({}) },
      {
        path: ["bus", "kafka", "topics", "consume"],
        value: "t",
        from: refusal({ kind: "kafka", action: "describe" }),
      },
      { path: ["bus", "kafka", "topics", "produce"], value: "t", from: refusal({ kind: "kafka", action: "produce" }) },
    ];
    expect(learningPolicy(given as never, learnt, true).bus).toEqual({
      redis: {
        env: "REDIS_URL",
        keys: { read: [NOTHING], write: [NOTHING] },
        publish: ["events:{run}", NOTHING],
        subscribe: [NOTHING],
      },
      // A describe learnt before the same topic's produce is dropped: produce allows describing.
      kafka: { topics: { create: true, produce: ["t"] } },
      // RabbitMQ's queues stay as written (the runner declares them; NOT_FOUND is not a refusal).
      rabbitmq: { queues: { consume: ["q:{run}"] } },
      requireRights: true,
    });
    expect(learningPolicy(given as never, learnt, false).bus?.redis).toEqual({
      env: "REDIS_URL",
      publish: ["events:{run}"],
    });
  });

  it("a Kafka create is learnt as consume until the topic is learnt for produce; MQTT lists start empty too", () => {
    const given = {
      name: "p",
      network: { allowedEndpoints: ["localhost:9092", "localhost:1883"] },
      bus: {
        kafka: { topics: { produce: ["t"], create: true } },
        mqtt: { publish: ["rooms/{run}/*/{agent}"], subscribe: ["rooms/{run}/all/*"] },
      },
    };
    const created: Learnt = {
      path: ["bus", "kafka", "topics", "consume"],
      value: "t",
      from: refusal({ kind: "kafka", action: "create" }),
    };
    expect(learningPolicy(given as never, [created], true).bus).toEqual({
      kafka: { topics: { create: true, consume: ["t"] } },
      mqtt: {},
    });
    const produced: Learnt = {
      path: ["bus", "kafka", "topics", "produce"],
      value: "t",
      from: refusal({ kind: "kafka", action: "produce" }),
    };
    expect(learningPolicy(given as never, [created, produced], true).bus?.kafka).toEqual({
      topics: { create: true, produce: ["t"] },
    });
  });

  it("a round's copy of a policy names the same requirements file as the policy does", () => {
    const input = { name: "p", packages: { pip: "requirements.txt" } };
    expect(anchored(input as never, "/work/examples/py/producer.yaml").packages).toEqual({
      pip: "/work/examples/py/requirements.txt",
    });
    expect(anchored({ name: "p", packages: { pip: ["redis==5.2.1"] } } as never, "/x/p.yaml").packages).toEqual({
      pip: ["redis==5.2.1"],
    });
  });

  it("writes the learnt file with the given file's comments, a comment per learnt line, and a diff", () => {
    const given =
      '# mine\nname: p\nnetwork:\n  allowedEndpoints: [localhost:6379]\nbus:\n  redis:   # REDIS_URL\n    publish: ["a", "b"]\n    subscribe: ["c"]\n';
    const from = refusal({ resource: "events:r-1" });
    const text = learnedYaml(
      given,
      {
        policy: { name: "p", bus: { redis: { publish: ["events:{run}"] } } } as never,
        learnt: [{ path: ["bus", "redis", "publish"], value: "events:{run}", from }],
        runs: [],
        rounds: 2,
        notLearnt: [],
        passed: true,
      },
      { agent: "a.ts", policyFile: "p.yaml" },
    );
    expect(text).toMatch(/^# Learnt by `airlock learn` from 2 runs of a\.ts under p\.yaml:/);
    expect(text).toContain("# mine");
    expect(text).toContain("- events:{run} # learnt: redis publish channel events:r-1");
    expect(text).not.toContain("subscribe");
    const diff = lineDiff(given, text);
    expect(diff).toContain('-     publish: ["a", "b"]');
    expect(diff).toContain('-     subscribe: ["c"]');
    expect(diff.some((l) => l.startsWith("+") && l.includes("events:{run}"))).toBe(true);
  });
});
