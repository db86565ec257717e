import { appendFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BrokerLog, logDenials, MAX_LOG_DENIALS } from "../../runner/bus/broker-log.js";
import {
  deniedFromKafkaLog,
  deniedFromMosquittoLog,
  deniedFromNatsLog,
  deniedFromRabbitmqLog,
} from "../../runner/bus/log-denials.js";
import { allRefusals, refusalSummary, refusalsFileFor, writeRefusals } from "../../runner/run/refusals.js";
import { refusedLines } from "../../runner/cli/commands/run.js";
import { junitXml } from "../../runner/group/junit.js";
import { emptyResult } from "../../runner/run/result.js";

// Lines as the local brokers wrote them when the security suite's attackers were refused.
const ME = "airlock-amqp-attacker-ce2295fd-1796356447";
const RABBIT = [
  `2026-12-04 03:52:31.463297+00:00 [error] <0.890.0> operation basic.consume caused a channel exception access_refused: access to queue 'other-agent.791bc766.tasks' in vhost '/' refused for user '${ME}'`,
  `2026-12-04 03:52:31.414781+00:00 [error] <0.883.0> operation basic.get caused a channel exception access_refused: access to queue 'other-agent.791bc766.tasks' in vhost '/' refused for user '${ME}'`,
  `2026-12-04 03:52:31.507440+00:00 [error] <0.897.0> operation basic.publish caused a channel exception access_refused: access to exchange 'amq.default' in vhost '/' refused for user '${ME}'`,
  `2026-12-04 03:52:31.507440+00:00 [error] <0.897.0> operation basic.publish caused a channel exception access_refused: write access to exchange 'results' in vhost '/' refused for user '${ME}'`,
  `2026-12-04 03:52:31.553361+00:00 [error] <0.909.0> operation basic.publish caused a channel exception access_refused: write access to exchange 'results' in vhost '/' refused for user '${ME}'`,
  `2026-12-04 03:52:31.553361+00:00 [error] <0.909.0> operation basic.consume caused a channel exception access_refused: access to queue 'x' in vhost '/' refused for user 'airlock-someone-else-1796356447'`,
  "2026-12-04 03:52:31.553361+00:00 [info] <0.909.0> accepting AMQP connection",
];
const NATS_USER = "airlock-nats-attacker-3ad2b82f-1796356516";
const NATS = [
  `[5894] 2026/12/04 03:52:41.009816 [ERR] 172.18.0.2:54024 - cid:10 - Publish Violation - User "${NATS_USER}", Subject "other.b9f8a2b2.x"`,
  `[5894] 2026/12/04 03:52:41.413298 [ERR] 172.18.0.2:54032 - cid:11 - Subscription Violation - User "${NATS_USER}", Subject "other.b9f8a2b2.>", SID 1`,
  `[5894] 2026/12/04 03:52:44.421569 [ERR] 172.18.0.2:54046 - cid:13 - Subscription Violation - User "${NATS_USER}", Subject "_INBOX.>", SID 1`,
  `[5894] 2026/12/04 03:52:44.421569 [ERR] 172.18.0.2:54046 - cid:13 - Subscription Violation - User "${NATS_USER}x", Subject "mine", SID 1`,
];
const KAFKA_USER = "airlock-kafka-attacker-89f1bda3-1796356509";
const kafka = (op: string, resource: string, request: string) =>
  `[2026-12-04 03:52:34,848] INFO Principal = User:${KAFKA_USER} is Denied operation = ${op} from host = 172.18.0.2 on resource = ${resource} for request = ${request} with resourceRefCount = 1 based on rule DefaultDeny (kafka.authorizer.logger)`;
const KAFKA = [
  kafka("WRITE", "Topic:LITERAL:other-agent-4bd07077-events", "Produce"),
  kafka("DESCRIBE", "Topic:LITERAL:other-agent-4bd07077-events", "Metadata"),
  kafka("READ", "Group:LITERAL:their-group", "JoinGroup"),
  kafka("ALTER", "Cluster:LITERAL:kafka-cluster", "CreateAcls"),
  kafka("CREATE", "Topic:LITERAL:mine-new", "CreateTopics"),
];

describe("brokers' logs as refusals", () => {
  it("RabbitMQ: each access_refused of this user, counted, with the line to add or why none can", () => {
    const denied = deniedFromRabbitmqLog(RABBIT, ME);
    expect(denied).toEqual([
      expect.objectContaining({
        what: "queue",
        name: "other-agent.791bc766.tasks",
        action: "consume",
        count: 2,
        fix: "add other-agent.791bc766.tasks to bus.rabbitmq.queues.consume",
        time: "2026-12-04T03:52:31.463Z",
      }),
      expect.objectContaining({ what: "exchange", name: "amq.default", action: "publish", never: true }),
      expect.objectContaining({
        what: "exchange",
        name: "results",
        action: "publish",
        count: 2,
        fix: "add results to bus.rabbitmq.exchanges.publish",
      }),
    ]);
    // basic.consume and basic.get are one action on one queue: counted together, the first time kept.
    expect(denied[0]!.command).toBe("basic.consume");
  });

  it("NATS: publish and subscription violations of this user; other inboxes can never be allowed", () => {
    expect(deniedFromNatsLog(NATS, NATS_USER)).toEqual([
      expect.objectContaining({
        what: "subject",
        name: "other.b9f8a2b2.x",
        action: "publish",
        fix: "add other.b9f8a2b2.x to bus.nats.publish",
      }),
      expect.objectContaining({
        name: "other.b9f8a2b2.>",
        action: "subscribe",
        fix: "add other.b9f8a2b2.> to bus.nats.subscribe",
      }),
      expect.objectContaining({ name: "_INBOX.>", action: "subscribe", never: true }),
    ]);
  });

  it("Kafka: the authorizer's denials of this user, as produce / consume / group / never", () => {
    const denied = deniedFromKafkaLog(KAFKA, KAFKA_USER);
    expect(denied.map((d) => [d.what, d.name, d.action, d.never ?? false])).toEqual([
      ["topic", "other-agent-4bd07077-events", "produce", false],
      ["topic", "other-agent-4bd07077-events", "describe", false],
      ["group", "their-group", "consume", false],
      ["cluster", "kafka-cluster", "alter", true],
      ["topic", "mine-new", "create", false],
    ]);
    expect(denied[0]!.fix).toBe("add other-agent-4bd07077-events to bus.kafka.topics.produce");
    expect(denied[2]!.fix).toBe("add their-group to bus.kafka.groups");
    expect(denied[4]!.fix).toMatch(/topics\.create: true/);
    expect(deniedFromKafkaLog(KAFKA, `${KAFKA_USER}-other`)).toEqual([]);
  });
});

describe("Mosquitto's debug log (AIRLOCK_MQTT_LOG)", () => {
  it("a refused publish of this client, with the line to add; the broker's own topics never", () => {
    const me = "airlock-room-1a2b3c4d-1796356516";
    const lines = [
      `1764820000: Denied PUBLISH from ${me} (d0, q1, r0, m1, 'rooms/other/x', ... (5 bytes))`,
      `1764820001: Denied PUBLISH from ${me} (d0, q0, r0, m0, 'rooms/other/x', ... (7 bytes))`,
      `1764820002: Denied PUBLISH from ${me} (d0, q0, r1, m0, '$CONTROL/dynamic-security/v1', ... (70 bytes))`,
      `1764820003: Denied PUBLISH from someone-else (d0, q0, r0, m0, 'x', ... (1 bytes))`,
      `1764820004: Received PUBLISH from ${me} (d0, q0, r0, m0, 'rooms/mine', ... (1 bytes))`,
    ];
    expect(deniedFromMosquittoLog(lines, me)).toEqual([
      {
        broker: "mqtt",
        what: "topic",
        name: "rooms/other/x",
        action: "publish",
        count: 2,
        fix: "add rooms/other/x to bus.mqtt.publish",
        time: "2025-12-04T03:46:40.000Z",
        allow: { path: ["bus", "mqtt", "publish"], value: "rooms/other/x" },
      },
      expect.objectContaining({ name: "$CONTROL/dynamic-security/v1", never: true }),
    ]);
  });
});

describe("a broker's log, read during and after a run", () => {
  it("reads only what was added since the identity was minted, whole lines only, and adds up across reads", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-log-"));
    const file = join(dir, "nats.log");
    await writeFile(file, `${NATS[0]}\n`);
    const log = (await BrokerLog.at(file))!;
    const read = logDenials(log, `"${NATS_USER}"`, (lines) => deniedFromNatsLog(lines, NATS_USER));
    expect(await read()).toEqual([]);
    // A line still being written is not read until it is whole.
    await appendFile(file, `${NATS[0]}\n${NATS[1]!.slice(0, 40)}`);
    expect((await read()).map((d) => [d.name, d.count])).toEqual([["other.b9f8a2b2.x", 1]]);
    await appendFile(file, `${NATS[1]!.slice(40)}\n${NATS[0]}\n`);
    expect((await read()).map((d) => [d.name, d.count])).toEqual([
      ["other.b9f8a2b2.x", 2],
      ["other.b9f8a2b2.>", 1],
    ]);
    // A console log's colour codes are not part of the line.
    await appendFile(file, `\u001b[38;5;160m${NATS[1]}\u001b[0m\n`);
    expect((await read()).find((d) => d.name === "other.b9f8a2b2.>")?.count).toBe(2);
    // Rotated (the file got shorter): read from its start.
    await writeFile(file, `${NATS[2]}\n`);
    expect((await read()).map((d) => d.name)).toContain("_INBOX.>");
  });

  it("a flood of distinct refusals is bounded: the first ones listed, the rest counted in one entry", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-log-"));
    const file = join(dir, "nats.log");
    await writeFile(file, "");
    const log = (await BrokerLog.at(file))!;
    const lines = Array.from(
      { length: MAX_LOG_DENIALS + 50 },
      (_, i) =>
        `[1] 2026/12/04 03:52:41.009816 [ERR] 1.2.3.4:1 - cid:1 - Publish Violation - User "${NATS_USER}", Subject "s.${i}"`,
    );
    await writeFile(file, `${lines.join("\n")}\n`);
    const denied = await logDenials(log, NATS_USER, (l) => deniedFromNatsLog(l, NATS_USER))();
    expect(denied).toHaveLength(MAX_LOG_DENIALS + 1);
    expect(denied.at(-1)).toMatchObject({ name: "(more refusals)", count: 50 });
  });

  it("reads at most the given bytes per call, so a huge log costs bounded memory", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-log-"));
    const file = join(dir, "big.log");
    await writeFile(file, "");
    const log = (await BrokerLog.at(file))!;
    await writeFile(file, `${"x".repeat(100)}\n`.repeat(1000));
    let lines = 0;
    for (let i = 0; i < 1000; i++) {
      const got = await log.linesWith("x", 1010);
      if (!got.length) break;
      lines += got.length;
      expect(got.length).toBeLessThanOrEqual(10);
    }
    expect(lines).toBe(1000);
  });
});

describe("one record of refusals", () => {
  const denied = [
    { destination: "203.0.113.9:443", protocol: "tcp" as const, count: 3 },
    { destination: "127.0.0.1:6380", protocol: "tcp" as const, count: 1, loopback: true },
    {
      destination: "evil.test:443",
      protocol: "https" as const,
      count: 1,
      reason: "not-listed",
      fix: "add evil.test to network.https",
    },
  ];
  const bus = deniedFromRabbitmqLog(RABBIT, ME);

  it("has every layer in one list: when, layer, kind, action, resource, count, a stable rule and the fix", () => {
    const all = allRefusals(denied, bus, "2026-12-04T04:00:00.000Z");
    expect(all.map((r) => [r.layer, r.kind, r.action, r.resource, r.rule])).toEqual([
      ["broker", "rabbitmq", "consume", "other-agent.791bc766.tasks", "rabbitmq.queue.consume"],
      ["broker", "rabbitmq", "publish", "results", "rabbitmq.exchange.publish"],
      ["broker", "rabbitmq", "publish", "amq.default", "rabbitmq.exchange.publish"],
      ["network", "tcp", "connect", "203.0.113.9:443", "network.tcp"],
      ["https", "https", "connect", "evil.test:443", "https.not-listed"],
      ["network", "tcp", "connect", "localhost:6380", "network.loopback"],
    ]);
    expect(all[3]!.fix).toBe("add 203.0.113.9:443 to network.allowedEndpoints, if the agent needs it");
    expect(all[2]!.never).toBe(true);
    expect(refusalSummary(all, 3)).toMatch(
      /^rabbitmq consume queue other-agent.* \(fix: add .*\); rabbitmq publish exchange results \(fix: .*\); rabbitmq publish exchange amq.default \(none: .*\); and 3 more/,
    );
  });

  it("is written as JSON Lines beside the result, an empty file when nothing was refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-refusals-"));
    const out = join(dir, "hello");
    const all = allRefusals(denied, bus, new Date().toISOString());
    const file = await writeRefusals(out, all);
    expect(file).toBe(join(dir, "hello.denials.jsonl"));
    expect(refusalsFileFor(out)).toBe(file);
    const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
    expect(lines.map((l) => JSON.parse(l))).toEqual(all);
    await writeRefusals(out, []);
    expect(await readFile(file, "utf8")).toBe("");
  });

  it("the CLI prints a refused section, and JUnit carries one property per refusal", () => {
    const result = {
      ...emptyResult("worker", "/tmp/out/worker", "failed"),
      refusals: allRefusals([], bus, "2026-12-04T04:00:00.000Z"),
    };
    const tty = { isTTY: false } as NodeJS.WriteStream;
    const lines = refusedLines(result, tty);
    expect(lines[0]).toMatch(
      /^worker: refused 3 things \(lines to add go in the policy; all of them in .*worker\.denials\.jsonl\):$/,
    );
    expect(lines[1]).toMatch(/rabbitmq consume queue other-agent\.791bc766\.tasks\s+2×\s+→ add other-agent/);
    expect(lines[3]).toMatch(/rabbitmq publish exchange amq\.default\s+1×\s+✖ none: the default exchange/);
    const xml = junitXml({
      name: "pair",
      status: "failed",
      durationMs: 1,
      outputDir: "/tmp/out",
      results: [result],
    } as never);
    expect(xml).toContain(
      '<property name="airlock.refused" value="rabbitmq publish exchange results ×2: fix: add results to bus.rabbitmq.exchanges.publish"/>',
    );
  });
});

describe("the live refusals file", () => {
  it("answers an agent's request after its settling moment, coalesces refreshes, and ignores what is not a request", async () => {
    const { RefusalFeed, SETTLE_MS, folderSink } = await import("../../runner/run/refusal-feed.js");
    const dir = await mkdtemp(join(tmpdir(), "airlock-feed-"));
    let reads = 0;
    let bus: ReturnType<typeof deniedFromNatsLog> = [];
    const feed = new RefusalFeed({
      gate: async () => [],
      bus: async () => {
        reads++;
        await new Promise((r) => setTimeout(r, 20));
        return bus;
      },
    });
    // Asked before the folder is known: answered once it is.
    feed.ask("early");
    await feed.attach(folderSink(dir), 60_000);
    expect(await readFile(join(dir, "refusals.jsonl"), "utf8")).toBe("");
    bus = deniedFromNatsLog(NATS, NATS_USER);
    const started = Date.now();
    feed.ask("req1");
    feed.ask("not a token!");
    for (let i = 0; i < 50; i++) feed.request();
    for (;;) {
      const answered = await readFile(join(dir, "refusals.answered"), "utf8").catch(() => "");
      if (answered.split("\n").includes("req1")) break;
      expect(Date.now() - started).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(SETTLE_MS - 5);
    const lines = (await readFile(join(dir, "refusals.jsonl"), "utf8")).trim().split("\n");
    expect(lines.map((l) => JSON.parse(l).resource)).toEqual(["other.b9f8a2b2.x", "other.b9f8a2b2.>", "_INBOX.>"]);
    // 50 requests while one refresh ran: a handful of refreshes, not 50.
    expect(reads).toBeLessThan(6);
    await feed.stop();
    await feed.stop();
  });
});
