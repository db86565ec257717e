/**
 * Bus-level rights, attacked: an agent allowed (at L4) to reach one of airlock's local brokers (Redis,
 * RabbitMQ, Kafka, NATS, MQTT), with an identity that may use only its own names, tries the
 * broker-as-proxy commands, other agents' keys, channels, queues, topics and subjects, wildcard
 * subscriptions, other runs' inboxes and sessions, admin commands, guessed logins; afterwards the
 * test tries its credentials again. A decoy the test starts counts what the broker itself sends out. The same
 * attack runs from an image airlock built and from one derived from it. Rows go into docs/SECURITY.md.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePolicy, runAgent, type AgentResult } from "../../../runner/index.js";
import type { Refusal } from "../../../runner/run/refusals.js";
import { localBrokersFile } from "../../../runner/bus/rights.js";
import { containersRemoved } from "../../../runner/runner.js";
import { localBrokerAdmin as localAdmin, tcpDecoy, tempDir, type Decoy } from "../helpers.js";
import { attackerImage } from "./attacker.js";
import { SecurityReport } from "./report.js";

const HERE = import.meta.dirname;
const report = new SecurityReport("0b-bus");
afterAll(() => report.save());

/** The broker part of the run's one record of refusals, checked against its JSON Lines file. */
async function brokerRefusals(result: AgentResult, kind: string): Promise<Refusal[]> {
  const text = await readFile(result.refusalsFile, "utf8");
  const lines = text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Refusal);
  expect(lines).toEqual(result.refusals);
  return result.refusals.filter((r) => r.layer === "broker" && r.kind === kind);
}

/** Logins with a run's credentials, as anyone holding them would try (each resolves with what happened). */
async function redisLogin(creds: { host: string; port: number; user: string; password: string }): Promise<string> {
  const again = new Redis({
    host: creds.host === "localhost" ? "127.0.0.1" : creds.host,
    port: creds.port,
    lazyConnect: true,
    enableReadyCheck: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  again.on("error", () => {});
  await again.connect();
  const outcome = await again.call("AUTH", creds.user, creds.password).then(
    () => "logged in",
    (e: Error) => e.message,
  );
  again.disconnect();
  return outcome;
}
async function amqpLogin(url: string): Promise<string> {
  const amqp = await import("amqplib");
  return amqp.connect(url).then(
    async (c) => (await c.close(), "logged in"),
    (e: Error) => e.message,
  );
}
async function kafkaLogin(creds: { user: string; password: string }): Promise<unknown> {
  const { scramLogin } = await import("../../../runner/bus/kafka-scram.js");
  return scramLogin("127.0.0.1", 9092, creds.user, creds.password);
}
async function natsLogin(creds: { user: string; pass: string }): Promise<string> {
  const { connect } = await import("nats");
  return connect({
    servers: "127.0.0.1:4222",
    user: creds.user,
    pass: creds.pass,
    maxReconnectAttempts: 0,
    timeout: 3000,
  }).then(
    async (c) => (await c.close(), "logged in"),
    (e: Error) => e.message,
  );
}
async function mqttLogin(creds: { clientId: string; password: string }): Promise<string> {
  const mqtt = await import("mqtt");
  return mqtt
    .connectAsync("mqtt://127.0.0.1:1883", {
      username: creds.clientId,
      password: creds.password,
      clientId: creds.clientId,
      protocolVersion: 5,
      reconnectPeriod: 0,
    })
    .then(
      async (c) => (await c.endAsync(), "logged in"),
      (e: Error) => e.message,
    );
}

function adminRedis(): Redis {
  const a = (
    JSON.parse(readFileSync(localBrokersFile(), "utf8")) as {
      redis: { host: string; port: number; user: string; password: string };
    }
  ).redis;
  const r = new Redis({
    host: a.host,
    port: a.port,
    username: a.user,
    password: a.password,
    enableReadyCheck: false,
    lazyConnect: true,
  });
  r.on("error", () => {});
  return r;
}

const denied = (o: string | undefined) =>
  /NOPERM|WRONGPASS|NOAUTH|not allowed|ConnectionResetError|BrokenPipe/.test(o ?? "");

function redisSuite(label: string, airlockBuilt: boolean) {
  describe(`Redis rights, attacked from ${label}`, () => {
    const area = `bus: redis${airlockBuilt ? "" : " (derived image)"}`;
    const tag = randomBytes(4).toString("hex");
    const otherKey = `other-agent:${tag}:secret`;
    const otherChannel = `other-agent:${tag}:events`;
    let admin: Redis;
    let bystander: Redis;
    let decoy: Decoy;
    let result: AgentResult;
    let a: Record<string, string>;
    let creds: { host: string; port: number; user: string; password: string };
    // A login with the run's credentials the moment runAgent() returned.
    let atOnce = "not attempted";

    beforeAll(async () => {
      admin = adminRedis();
      await admin.connect();
      await admin.set(otherKey, "the other agent's secret");
      bystander = adminRedis();
      await bystander.connect();
      decoy = await tcpDecoy("127.0.0.1");
      const image = await attackerImage({ airlockBuilt });
      const outputDir = join(await tempDir(), "out");
      const cfg = { redis: { env: "REDIS_URL", otherKey, otherChannel, decoyPort: decoy.port } };
      result = await runAgent({
        command: ["python3", "/workspace/bus-attack.py"],
        image,
        policy: definePolicy({
          name: "bus-attacker",
          network: { allowedEndpoints: ["localhost:6379"] },
          env: { set: { BUS_ATTACK: JSON.stringify(cfg) } },
          bus: {
            redis: {
              keys: { write: ["mine:{run}:*"] },
              publish: ["mine:{run}:events"],
              subscribe: ["mine:{run}:events"],
            },
          },
          timeoutSeconds: 60,
        }),
        outputDir,
        workingDir: HERE,
        requireBusRights: true,
      });
      a = JSON.parse(await readFile(join(outputDir, "bus-attacks.json"), "utf8").catch(() => "{}"));
      creds = (
        JSON.parse(await readFile(join(outputDir, "credentials.json"), "utf8").catch(() => "{}")) as {
          redis: typeof creds;
        }
      ).redis;
      atOnce = await redisLogin(creds);
      await containersRemoved();
    }, 300_000);

    afterAll(async () => {
      await admin?.del(otherKey).catch(() => {});
      admin?.disconnect();
      bystander?.disconnect();
      await decoy?.close();
    });

    it("the agent works within its rights, with an identity of its own", () => {
      expect(result.status, result.stderr + result.error).toBe("succeeded");
      const own = a["redis:own-key"] ?? "";
      const held =
        /^\['OK', 'mine'\]$/.test(own) &&
        a["redis:auth"] === "OK" &&
        /^airlock-bus-attacker-/.test(a["redis:identity"] ?? "");
      expect(
        report.add(
          area,
          "its own key, with the identity minted for the run",
          "allowed",
          `${a["redis:identity"]}: ${own}`,
          held,
        ),
        JSON.stringify(a),
      ).toBe(true);
    });

    it.each([
      ["redis:migrate", "MIGRATE its key to a decoy port (the broker as a proxy)"],
      ["redis:replicaof", "REPLICAOF a decoy (the broker connects out)"],
      ["redis:slaveof", "SLAVEOF a decoy"],
      ["redis:config-get", "CONFIG GET dir"],
      ["redis:config-set", "CONFIG SET a non-protected setting"],
      ["redis:client-list", "CLIENT LIST (every client's address)"],
      ["redis:client-kill", "CLIENT KILL another client's connection"],
      ["redis:acl-users", "ACL USERS"],
      ["redis:acl-setuser", "ACL SETUSER itself +@all ~*"],
      ["redis:keys", "KEYS * (every agent's keys)"],
      ["redis:scan", "SCAN (ignores key patterns)"],
      ["redis:flushdb", "FLUSHDB"],
      ["redis:flushall", "FLUSHALL"],
      ["redis:eval", "EVAL a script that reads another agent's key"],
      ["redis:function-flush", "FUNCTION FLUSH (every tenant's functions)"],
      ["redis:debug", "DEBUG"],
      ["redis:module", "MODULE LIST"],
      ["redis:save", "SAVE (with CONFIG SET dir: write a file on the host)"],
      ["redis:shutdown", "SHUTDOWN"],
      ["redis:monitor", "MONITOR (every client's commands)"],
      ["redis:select", "SELECT another database"],
      ["redis:other-key-read", "GET another agent's key"],
      ["redis:other-key-write", "SET another agent's key"],
      ["redis:other-key-delete", "DEL another agent's key"],
      ["redis:publish-other", "PUBLISH on another agent's channel"],
      ["redis:subscribe-other", "SUBSCRIBE to another agent's channel"],
      ["redis:psubscribe-all", "PSUBSCRIBE * (every channel)"],
    ])("%s is refused", (key, label) => {
      expect(
        report.add(area, label, "refused (NOPERM)", a[key] ?? "not attempted", denied(a[key])),
        `${key}: ${a[key]}`,
      ).toBe(true);
    });

    it("logins as default, admin or with guessed passwords fail, and so does no login", () => {
      const logins = Object.entries(a).filter(([k]) => k.startsWith("redis:login:"));
      const held = logins.length === 5 && logins.every(([, o]) => denied(o)) && denied(a["redis:anonymous"]);
      expect(
        report.add(
          area,
          "log in as default / airlock-admin / admin with empty or guessed passwords, or not at all",
          "refused (WRONGPASS / NOAUTH)",
          logins.map(([k, o]) => `${k.slice(12)}: ${o.slice(0, 20)}`).join("; "),
          held,
        ),
        JSON.stringify(logins),
      ).toBe(true);
    });

    it("the broker sent nothing out, the other agent's key is intact, and other clients stayed connected", async () => {
      const value = await admin.get(otherKey);
      const alive = await bystander.ping().then(
        () => true,
        () => false,
      );
      const held = decoy.hits() === 0 && value === "the other agent's secret" && alive;
      expect(
        report.add(
          area,
          "after the attempts: the decoy, the planted key, a bystander's connection",
          "decoy 0, key intact, bystander connected",
          `decoy ${decoy.hits()}, key ${value === "the other agent's secret" ? "intact" : value}, bystander ${alive ? "connected" : "gone"}`,
          held,
        ),
      ).toBe(true);
    });

    it("what the broker refused is in the run's record of refusals (result and JSON Lines), with the line to add or why none can", async () => {
      const refused = await brokerRefusals(result, "redis");
      expect(refused).toContainEqual(expect.objectContaining({ resourceType: "key", resource: otherKey }));
      expect(refused.find((r) => r.resource === otherKey)!.fix).toMatch(
        /^add a pattern for .* to bus\.redis\.keys\.read/,
      );
    });

    it("the identity is gone once the run ended: its credentials no longer log in", async () => {
      const users = (await admin.call("ACL", "USERS")) as string[];
      const outcome = await redisLogin(creds);
      const held = !users.includes(creds.user) && /WRONGPASS/.test(outcome) && /WRONGPASS/.test(atOnce);
      expect(
        report.add(
          area,
          "reuse the run's credentials the moment runAgent() returned, and after",
          "refused both times: the identity was deleted before the result",
          `at once: ${atOnce}; later: ${outcome}; still listed: ${users.includes(creds.user)}`,
          held,
        ),
      ).toBe(true);
    });
  });
}

redisSuite("an image airlock built", true);
redisSuite("an image derived from ours", false);

interface RabbitAdmin {
  api: string;
  user: string;
  password: string;
}
function rabbitAdmin(): RabbitAdmin {
  return (JSON.parse(readFileSync(localBrokersFile(), "utf8")) as { rabbitmq: RabbitAdmin }).rabbitmq;
}
async function rabbitApi(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const a = rabbitAdmin();
  const res = await fetch(`${a.api}/api/${path}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`${a.user}:${a.password}`).toString("base64")}`,
      "content-type": "application/json",
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

function rabbitSuite(label: string, airlockBuilt: boolean) {
  describe(`RabbitMQ rights, attacked from ${label}`, () => {
    const area = `bus: rabbitmq${airlockBuilt ? "" : " (derived image)"}`;
    const otherQueue = `other-agent.${randomBytes(4).toString("hex")}.tasks`;
    let result: AgentResult;
    let a: Record<string, string>;
    let creds: { url: string };
    let atOnce = "not attempted";
    // What is in the other queue, read as admin and put back (the API's counters lag by seconds).
    const depth = async () =>
      (
        (
          await rabbitApi("POST", `queues/%2F/${encodeURIComponent(otherQueue)}/get`, {
            count: 10,
            ackmode: "reject_requeue_true",
            encoding: "auto",
          })
        ).json as unknown[] | undefined
      )?.length;

    beforeAll(async () => {
      // Another agent's queue with one message in it, planted as admin.
      await rabbitApi("PUT", `queues/%2F/${encodeURIComponent(otherQueue)}`, { durable: true });
      await rabbitApi("POST", "exchanges/%2F/amq.default/publish", {
        properties: {},
        routing_key: otherQueue,
        payload: "the other agent's task",
        payload_encoding: "string",
      });
      const image = await attackerImage({ airlockBuilt });
      const outputDir = join(await tempDir(), "out");
      result = await runAgent({
        command: ["node", "/workspace/bus-attack-amqp.cjs"],
        image,
        policy: definePolicy({
          name: "amqp-attacker",
          network: { allowedEndpoints: ["localhost:5672"] },
          env: { set: { AMQP_ATTACK: JSON.stringify({ otherQueue }) } },
          bus: { rabbitmq: { queues: { publish: ["mine:{run}", "feed:{run}"], consume: ["mine:{run}"] } } },
          timeoutSeconds: 60,
        }),
        outputDir,
        workingDir: HERE,
        requireBusRights: true,
      });
      a = JSON.parse(await readFile(join(outputDir, "amqp-attacks.json"), "utf8").catch(() => "{}"));
      creds = JSON.parse(await readFile(join(outputDir, "amqp-credentials.json"), "utf8").catch(() => "{}"));
      atOnce = await amqpLogin(creds.url);
      await containersRemoved();
    }, 300_000);

    afterAll(async () => {
      await rabbitApi("DELETE", `queues/%2F/${encodeURIComponent(otherQueue)}`);
    });

    it("the agent works within its rights, with a user of its own", () => {
      expect(result.status, result.stderr + result.error).toBe("succeeded");
      const held = a["own-queue"] === "mine" && /^airlock-amqp-attacker-/.test(a.identity ?? "");
      expect(
        report.add(
          area,
          "its own queue (publish through the run's exchange, then get)",
          "allowed",
          `${a.identity}: ${a["own-queue"]}`,
          held,
        ),
        JSON.stringify(a),
      ).toBe(true);
    });

    it.each([
      ["declare-other", "declare a queue outside its rights"],
      ["get-other", "basic.get from another agent's queue"],
      ["consume-other", "consume another agent's queue"],
      ["publish-default-exchange", "publish into another agent's queue through the default exchange"],
      ["bind-other", "bind another agent's queue to its own exchange"],
      ["purge-other", "purge another agent's queue"],
      ["delete-other", "delete another agent's queue"],
      ["delete-publish-only", "delete a queue it may only publish to"],
      ["redeclare-publish-only", "redeclare a queue it may only publish to (x-max-length 0: every message dropped)"],
      ["delete-consumed", "delete the queue it consumes (others feed it)"],
      ["redeclare-consumed", "redefine the queue it consumes (not durable, 1 ms TTL)"],
      ["declare-amq-exchange", "declare an amq.* exchange"],
      ["publish-amq-topic", "publish to amq.topic"],
    ])("%s is refused", (key, label) => {
      const o = a[key] ?? "not attempted";
      expect(
        report.add(area, label, "refused (ACCESS_REFUSED)", o, /ACCESS_REFUSED|403|closed/i.test(o)),
        `${key}: ${o}`,
      ).toBe(true);
    });

    it("its own exchange reaches only the queues it was granted, and the other queue is untouched", async () => {
      const left = await depth();
      const held = a["publish-own-exchange-other-key"] === "returned unroutable" && left === 1;
      expect(
        report.add(
          area,
          "publish to another agent's queue through the run's own exchange",
          "unroutable (not bound); the other queue still holds its 1 message",
          `${a["publish-own-exchange-other-key"]}; other queue: ${left} message(s)`,
          held,
        ),
      ).toBe(true);
    });

    it("guest, admin with guessed passwords and anonymous logins are refused", () => {
      const logins = Object.entries(a).filter(([k]) => k.startsWith("login:"));
      const held = logins.length === 5 && logins.every(([, o]) => /ACCESS_REFUSED|403|auth/i.test(o));
      expect(
        report.add(
          area,
          "log in as guest/guest, airlock-admin with empty or guessed passwords, admin/admin, or anonymously",
          "refused",
          logins.map(([k, o]) => `${k.slice(6)}: ${o.slice(0, 24)}`).join("; "),
          held,
        ),
        JSON.stringify(logins),
      ).toBe(true);
    });

    it("what the broker refused is in the run's record of refusals (result and JSON Lines), with the line to add or why none can", async () => {
      const refused = await brokerRefusals(result, "rabbitmq");
      expect(refused).toContainEqual(
        expect.objectContaining({
          action: "consume",
          resourceType: "queue",
          resource: otherQueue,
          rule: "rabbitmq.queue.consume",
          fix: `add ${otherQueue} to bus.rabbitmq.queues.consume`,
        }),
      );
      expect(refused).toContainEqual(
        expect.objectContaining({ action: "publish", resource: "amq.default", never: true }),
      );
    });

    it("the user is gone once the run ended, and so is its exchange", async () => {
      const outcome = await amqpLogin(creds.url);
      const users = ((await rabbitApi("GET", "users")).json as { name: string }[]).map((u) => u.name);
      const exchanges = ((await rabbitApi("GET", "exchanges/%2F")).json as { name: string }[])
        .map((e) => e.name)
        .filter((n) => n.includes(a.identity ?? "?"));
      const held =
        /ACCESS_REFUSED|403/.test(outcome) &&
        /ACCESS_REFUSED|403/.test(atOnce) &&
        !users.includes(a.identity ?? "") &&
        exchanges.length === 0;
      expect(
        report.add(
          area,
          "reuse the run's credentials the moment runAgent() returned, and after",
          "refused both times: the user was deleted before the result (its exchange soon after)",
          `at once: ${atOnce.slice(0, 40)}; later: ${outcome.slice(0, 40)}; user listed: ${users.includes(a.identity ?? "")}; exchanges left: ${exchanges.length}`,
          held,
        ),
      ).toBe(true);
    });
  });
}

rabbitSuite("an image airlock built", true);
rabbitSuite("an image derived from ours", false);

function kafkaAdminCreds(): { host: string; port: number; user: string; password: string } {
  return (
    JSON.parse(readFileSync(localBrokersFile(), "utf8")) as {
      kafka: { host: string; port: number; user: string; password: string };
    }
  ).kafka;
}
async function kafkaAdmin<T>(
  work: (admin: import("kafkajs").Admin, kafka: import("kafkajs").Kafka) => Promise<T>,
): Promise<T> {
  const { Kafka, logLevel } = await import("kafkajs");
  const a = kafkaAdminCreds();
  const kafka = new Kafka({
    clientId: "test-admin",
    brokers: [`${a.host}:${a.port}`],
    sasl: { mechanism: "scram-sha-512", username: a.user, password: a.password },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await work(admin, kafka);
  } finally {
    await admin.disconnect();
  }
}

function kafkaSuite(label: string, airlockBuilt: boolean) {
  describe(`Kafka rights, attacked from ${label}`, () => {
    const area = `bus: kafka${airlockBuilt ? "" : " (derived image)"}`;
    const tag = randomBytes(4).toString("hex");
    const otherTopic = `other-agent-${tag}-events`;
    const otherGroup = `other-agent-${tag}-group`;
    let result: AgentResult;
    let a: Record<string, string>;
    let creds: { user: string; password: string };
    let atOnce: unknown = "not attempted";

    beforeAll(async () => {
      await kafkaAdmin(async (admin, kafka) => {
        await admin.createTopics({ topics: [{ topic: otherTopic, numPartitions: 1 }], waitForLeaders: true });
        const producer = kafka.producer();
        await producer.connect();
        await producer.send({ topic: otherTopic, messages: [{ value: "the other agent's event" }] });
        await producer.disconnect();
      });
      const image = await attackerImage({ airlockBuilt });
      const outputDir = join(await tempDir(), "out");
      result = await runAgent({
        command: ["node", "/workspace/bus-attack-kafka.cjs"],
        image,
        policy: definePolicy({
          name: "kafka-attacker",
          network: { allowedEndpoints: ["localhost:9092"] },
          env: { set: { KAFKA_ATTACK: JSON.stringify({ otherTopic, otherGroup }) } },
          bus: {
            kafka: {
              topics: { produce: ["mine-{run}"], consume: ["mine-{run}"], create: true },
              groups: ["mine-{run}-group"],
            },
          },
          timeoutSeconds: 120,
        }),
        outputDir,
        workingDir: HERE,
        requireBusRights: true,
      });
      a = JSON.parse(await readFile(join(outputDir, "kafka-attacks.json"), "utf8").catch(() => "{}"));
      creds = JSON.parse(await readFile(join(outputDir, "kafka-credentials.json"), "utf8").catch(() => "{}"));
      atOnce = await kafkaLogin(creds);
      await containersRemoved();
    }, 300_000);

    afterAll(async () => {
      await kafkaAdmin((admin) => admin.deleteTopics({ topics: [otherTopic] })).catch(() => {});
    });

    it("the agent works within its rights, with a SCRAM user of its own", () => {
      expect(result.status, result.stderr + result.error).toBe("succeeded");
      const held = a["own-topic"] === "read: mine" && /^airlock-kafka-attacker-/.test(a.identity ?? "");
      expect(
        report.add(
          area,
          "its own topic and group (create, produce, consume)",
          "allowed",
          `${a.identity}: ${a["own-topic"]}`,
          held,
        ),
        JSON.stringify(a),
      ).toBe(true);
    });

    it("does not even see other agents' topics", () => {
      const held = /^sees only: /.test(a["list-topics"] ?? "") && !(a["list-topics"] ?? "").includes(otherTopic);
      expect(report.add(area, "list topics", "only its own", a["list-topics"] ?? "not attempted", held)).toBe(true);
    });

    it.each([
      ["produce-other", "produce to another agent's topic"],
      ["consume-other", "consume another agent's topic"],
      ["other-group", "join another agent's consumer group"],
      ["create-other", "create a topic outside its prefix"],
      ["delete-other", "delete another agent's topic"],
      ["delete-own", "delete its own topic (no DELETE granted)"],
      ["describe-acls", "describe the cluster's ACLs"],
      ["create-acl", "grant itself READ on another agent's topic"],
      ["offsets-other", "read another agent's topic offsets"],
    ])("%s is refused", (key, label) => {
      const o = a[key] ?? "not attempted";
      expect(
        report.add(
          area,
          label,
          "refused (AUTHORIZATION_FAILED)",
          o,
          /AUTHORIZATION_FAILED|not authorized|coordinator|does not host|UNKNOWN_TOPIC|not created/i.test(o) &&
            !/^(produced|deleted|created|read:|offsets:)/.test(o),
        ),
        `${key}: ${o}`,
      ).toBe(true);
    });

    it("admin with guessed passwords and a plaintext client are refused", () => {
      const logins = Object.entries(a).filter(([k]) => k.startsWith("login:"));
      const held = logins.length === 4 && logins.every(([, o]) => o !== "logged in");
      expect(
        report.add(
          area,
          "log in as airlock-admin with empty or guessed passwords, admin/admin, or without SASL",
          "refused",
          logins.map(([k, o]) => `${k.slice(6)}: ${o.slice(0, 30)}`).join("; "),
          held,
        ),
        JSON.stringify(logins),
      ).toBe(true);
    });

    it("what the broker refused is in the run's record of refusals (result and JSON Lines), with the line to add or why none can", async () => {
      const refused = await brokerRefusals(result, "kafka");
      expect(refused).toContainEqual(
        expect.objectContaining({
          resourceType: "topic",
          resource: otherTopic,
          fix: expect.stringMatching(new RegExp(`^add ${otherTopic} to bus\\.kafka\\.topics\\.`)),
        }),
      );
      expect(refused.every((r) => r.fix.length > 0 && r.count >= 1)).toBe(true);
    });

    it("the other agent's topic is intact, and the user and its ACLs are gone once the run ended", async () => {
      const login = await kafkaLogin(creds);
      const { acls, offsets } = await kafkaAdmin(async (admin) => ({
        acls: (
          await admin.describeAcls({
            resourceType: 1,
            resourcePatternType: 1,
            operation: 1,
            permissionType: 1,
            principal: `User:${creds.user}`,
          } as never)
        ).resources.length,
        offsets: await admin.fetchTopicOffsets(otherTopic),
      }));
      const held = login !== true && atOnce !== true && acls === 0 && offsets[0]?.offset === "1";
      expect(
        report.add(
          area,
          "reuse the run's credentials the moment runAgent() returned, and after; the other agent's topic",
          "login refused both times, no ACL left; the other topic still holds exactly its 1 event",
          `at once: ${String(atOnce).slice(0, 40)}; later: ${String(login).slice(0, 40)}; ACLs left ${acls}; other topic offset ${offsets[0]?.offset}`,
          held,
        ),
      ).toBe(true);
    });
  });
}

kafkaSuite("an image airlock built", true);
kafkaSuite("an image derived from ours", false);

/** Another run's identity on the same broker, as a victim: minted like any run's. */
async function victimRights(bus: NonNullable<Parameters<typeof definePolicy>[0]["bus"]>, endpoint: string) {
  const { openBusRights } = await import("../../../runner/bus/rights.js");
  const policy = definePolicy({ name: "victim", network: { allowedEndpoints: [endpoint] }, bus });
  return openBusRights({
    policy,
    runId: `victim-${randomBytes(3).toString("hex")}`,
    run: "victim",
    expiresAt: Date.now() + 300_000,
  });
}

function natsSuite(label: string, airlockBuilt: boolean) {
  describe(`NATS rights, attacked from ${label}`, () => {
    const area = `bus: nats${airlockBuilt ? "" : " (derived image)"}`;
    const tag = randomBytes(4).toString("hex");
    const other = `other.${tag}`;
    let result: AgentResult;
    let a: Record<string, string>;
    let creds: { user: string; pass: string };
    let atOnce = "not attempted";
    const watcherGot: string[] = [];
    let victimInboxGot = 0;

    beforeAll(async () => {
      const { connect } = await import("nats");
      const admin = localAdmin<{ user: string; password: string }>("nats");
      const watcher = await connect({ servers: "127.0.0.1:4222", user: admin.user, pass: admin.password });
      const victim = await victimRights({ nats: { subscribe: ["victim.*"] } }, "localhost:4222");
      const vu = new URL(victim.env.NATS_URL!);
      const victimConn = await connect({
        servers: "127.0.0.1:4222",
        user: decodeURIComponent(vu.username),
        pass: decodeURIComponent(vu.password),
        inboxPrefix: victim.env.AIRLOCK_NATS_INBOX_PREFIX,
      });
      const inboxSub = victimConn.subscribe(`${victim.env.AIRLOCK_NATS_INBOX_PREFIX}.>`);
      void (async () => {
        for await (const _ of inboxSub) victimInboxGot++;
      })();
      const seen = watcher.subscribe(`${other}.>`);
      void (async () => {
        for await (const m of seen) if (m.string() === "ATTACK") watcherGot.push(m.subject);
      })();
      // The other agent's traffic, and answers into the victim's inbox, all through the attack.
      const traffic = setInterval(() => {
        watcher.publish(`${other}.x`, "the other agent's message");
        watcher.publish(`${other}.work`, "the other agent's task");
        watcher.publish(`${victim.env.AIRLOCK_NATS_INBOX_PREFIX}.reply`, "a reply for the victim");
      }, 100);
      try {
        const image = await attackerImage({ airlockBuilt });
        const outputDir = join(await tempDir(), "out");
        result = await runAgent({
          command: ["node", "/workspace/bus-attack-nats.cjs"],
          image,
          policy: definePolicy({
            name: "nats-attacker",
            network: { allowedEndpoints: ["localhost:4222"] },
            env: { set: { NATS_ATTACK: JSON.stringify({ other, otherInbox: victim.env.AIRLOCK_NATS_INBOX_PREFIX }) } },
            bus: { nats: { publish: ["mine.{run}.*"], subscribe: ["mine.{run}.*"] } },
            timeoutSeconds: 120,
          }),
          outputDir,
          workingDir: HERE,
          requireBusRights: true,
        });
        a = JSON.parse(await readFile(join(outputDir, "nats-attacks.json"), "utf8").catch(() => "{}"));
        creds = JSON.parse(await readFile(join(outputDir, "nats-credentials.json"), "utf8").catch(() => "{}"));
        atOnce = await natsLogin(creds);
        await containersRemoved();
      } finally {
        clearInterval(traffic);
        await watcher.drain();
        await victimConn.drain().catch(() => {});
        await victim.revoke();
      }
    }, 300_000);

    it("the agent works within its rights, with a user and an inbox prefix of its own", () => {
      expect(result.status, result.stderr + result.error).toBe("succeeded");
      const held =
        /^received 1 on mine\./.test(a["own-subject"] ?? "") &&
        /^airlock-nats-attacker-/.test(a.identity ?? "") &&
        a.inbox === `_INBOX_${a.identity}`;
      expect(
        report.add(
          area,
          "its own subjects (publish, subscribe); its own inbox prefix",
          "allowed",
          `${a.identity}: ${a["own-subject"]}; inbox ${a.inbox}`,
          held,
        ),
        JSON.stringify(a),
      ).toBe(true);
    });

    it.each([
      ["publish-other", "publish to another agent's subject", "Publish"],
      ["subscribe-other", "subscribe to another agent's subjects", "Subscription"],
      ["subscribe-everything", "subscribe to > (everything)", "Subscription"],
      ["subscribe-all-inboxes", "subscribe to _INBOX.> (every client's replies)", "Subscription"],
      ["subscribe-other-run-inbox", "subscribe to another run's inbox prefix", "Subscription"],
      ["system-account", "subscribe to $SYS.> and publish a server request", "Permissions Violation"],
      ["queue-group-steal", "join a queue group on another agent's work subject", "Subscription"],
    ])("%s is refused", (key, label, word) => {
      const o = a[key] ?? "not attempted";
      expect(
        report.add(
          area,
          label,
          "Permissions Violation, nothing received",
          o,
          o.includes("Permissions Violation") && o.includes(word) && !o.includes("received"),
        ),
        `${key}: ${o}`,
      ).toBe(true);
    });

    it("nothing it published reached the other agent's subjects, and the other run's inbox saw only its own replies", () => {
      const held = watcherGot.length === 0;
      expect(
        report.add(
          area,
          "what reached a watcher on the other agent's subjects",
          "nothing from the attacker",
          `${watcherGot.length} messages; victim inbox received ${victimInboxGot} of its own replies`,
          held,
        ),
      ).toBe(true);
    });

    it("admin with guessed passwords and anonymous logins are refused", () => {
      const logins = Object.entries(a).filter(([k]) => k.startsWith("login:"));
      const held = logins.length === 4 && logins.every(([, o]) => /Authorization Violation/i.test(o));
      expect(
        report.add(
          area,
          "log in as airlock-admin with empty or guessed passwords, admin/admin, or with no credentials",
          "Authorization Violation",
          logins.map(([k, o]) => `${k.slice(6)}: ${o.slice(0, 30)}`).join("; "),
          held,
        ),
        JSON.stringify(logins),
      ).toBe(true);
    });

    it("what the broker refused is in the run's record of refusals (result and JSON Lines), with the line to add or why none can", async () => {
      const refused = await brokerRefusals(result, "nats");
      expect(refused).toContainEqual(
        expect.objectContaining({
          action: "subscribe",
          resource: "_INBOX.>",
          never: true,
          rule: "nats.subject.subscribe",
        }),
      );
      expect(
        refused.some((r) => r.resource.startsWith(other) && r.fix === `add ${r.resource} to bus.nats.${r.action}`),
      ).toBe(true);
    });

    it("the user is gone once the run ended: its credentials no longer log in", async () => {
      const again = await natsLogin(creds);
      const users = readFileSync(localAdmin<{ users: string }>("nats").users, "utf8");
      const held = again !== "logged in" && atOnce !== "logged in" && !users.includes(creds.user);
      expect(
        report.add(
          area,
          "reuse the run's credentials the moment runAgent() returned, and after",
          "refused both times; the user is out of the server's file",
          `at once: ${atOnce.slice(0, 40)}; later: ${again.slice(0, 40)}; in users file: ${users.includes(creds.user)}`,
          held,
        ),
      ).toBe(true);
    });
  });
}

natsSuite("an image airlock built", true);
natsSuite("an image derived from ours", false);

function mqttSuite(label: string, airlockBuilt: boolean) {
  describe(`MQTT rights, attacked from ${label}`, () => {
    const area = `bus: mqtt${airlockBuilt ? "" : " (derived image)"}`;
    const tag = randomBytes(4).toString("hex");
    const other = `other/${tag}`;
    const card = `cards/${tag}/victim`;
    const cardText = JSON.stringify({ name: "victim", skills: ["echo"] });
    let result: AgentResult;
    let a: Record<string, string>;
    let creds: { clientId: string; password: string };
    let atOnce = "not attempted";
    const watcherGot: string[] = [];
    let victimStillConnected = false;
    let cardAfter = "";
    let intruder = false;

    beforeAll(async () => {
      const mqtt = await import("mqtt");
      const { dynsec } = await import("../../../runner/bus/mqtt-dynsec.js");
      const admin = localAdmin<{ host: string; port: number; user: string; password: string }>("mqtt");
      const adminUrl = `mqtt://${admin.host}:${admin.port}`;
      const watcher = await mqtt.connectAsync(adminUrl, {
        username: admin.user,
        password: admin.password,
        protocolVersion: 5,
        reconnectPeriod: 0,
      });
      await watcher.publishAsync(card, cardText, { qos: 1, retain: true });
      await watcher.subscribeAsync(`${other}/#`, { qos: 1 });
      watcher.on("message", (t, m) => m.toString() === "ATTACK" && watcherGot.push(t));
      const victim = await victimRights({ mqtt: { subscribe: ["victim/*"] } }, "localhost:1883");
      const victimConn = await mqtt.connectAsync(victim.env.MQTT_URL!, {
        clientId: victim.env.MQTT_CLIENT_ID!,
        protocolVersion: 5,
        reconnectPeriod: 0,
      });
      try {
        const image = await attackerImage({ airlockBuilt });
        const outputDir = join(await tempDir(), "out");
        result = await runAgent({
          command: ["node", "/workspace/bus-attack-mqtt.cjs"],
          image,
          policy: definePolicy({
            name: "mqtt-attacker",
            network: { allowedEndpoints: ["localhost:1883"] },
            env: { set: { MQTT_ATTACK: JSON.stringify({ other, card, victimClientId: victim.env.MQTT_CLIENT_ID }) } },
            bus: { mqtt: { publish: ["mine/{run}/*"], subscribe: ["mine/{run}/*"] } },
            timeoutSeconds: 120,
          }),
          outputDir,
          workingDir: HERE,
          requireBusRights: true,
        });
        a = JSON.parse(await readFile(join(outputDir, "mqtt-attacks.json"), "utf8").catch(() => "{}"));
        creds = JSON.parse(await readFile(join(outputDir, "mqtt-credentials.json"), "utf8").catch(() => "{}"));
        atOnce = await mqttLogin(creds);
        await containersRemoved();
        victimStillConnected = victimConn.connected;
        // The retained card, as a new subscriber sees it now.
        const reader = await mqtt.connectAsync(adminUrl, {
          username: admin.user,
          password: admin.password,
          protocolVersion: 5,
          reconnectPeriod: 0,
        });
        cardAfter = await new Promise<string>((resolve) => {
          reader.on("message", (_t, m) => resolve(m.toString()));
          void reader.subscribeAsync(card, { qos: 1 });
          setTimeout(() => resolve("(no retained message)"), 2000);
        });
        await reader.endAsync();
        const clients = (
          (
            await dynsec({ url: adminUrl, user: admin.user, password: admin.password, source: "test" }, [
              { command: "listClients" },
            ])
          )[0] as { clients: string[] }
        ).clients;
        intruder = clients.some((c) => c.startsWith("intruder-"));
      } finally {
        await watcher.publishAsync(card, "", { qos: 1, retain: true }).catch(() => {});
        await watcher.endAsync().catch(() => {});
        await victimConn.endAsync().catch(() => {});
        await victim.revoke();
      }
    }, 300_000);

    it("the agent works within its rights, with a client of its own", () => {
      expect(result.status, result.stderr + result.error).toBe("succeeded");
      const held = /^read mine\//.test(a["own-topic"] ?? "") && /^airlock-mqtt-attacker-/.test(a.identity ?? "");
      expect(
        report.add(area, "its own topics (publish, subscribe)", "allowed", `${a.identity}: ${a["own-topic"]}`, held),
        JSON.stringify(a),
      ).toBe(true);
    });

    it.each([
      ["publish-other", "publish to another agent's topic"],
      ["retain-over-other-card", "overwrite another agent's retained discovery card"],
      ["clear-other-card", "clear another agent's retained discovery card"],
      ["dynsec-control", "send a dynamic-security command (create a client)"],
    ])("%s is refused", (key, label) => {
      const o = a[key] ?? "not attempted";
      expect(
        report.add(area, label, "refused (reason 135)", o, /Not authorized.*135|\(135\)/i.test(o)),
        `${key}: ${o}`,
      ).toBe(true);
    });

    it.each([
      ["subscribe-other", "subscribe to another agent's topics"],
      ["subscribe-everything", "subscribe to #"],
      ["subscribe-plus", "subscribe to +/+/+"],
      ["subscribe-sys", "subscribe to $SYS/#"],
      ["subscribe-control", "subscribe to $CONTROL/# (the admin's answers)"],
    ])("%s is refused", (key, label) => {
      const o = a[key] ?? "not attempted";
      expect(
        report.add(area, label, "SUBACK 135, nothing received", o, /^refused: 135; received 0$/.test(o)),
        `${key}: ${o}`,
      ).toBe(true);
    });

    it("nothing reached the other agent's topics (not even over MQTT 3.1.1, which drops refusals silently), its card is intact, and no client was created", () => {
      const held = watcherGot.length === 0 && cardAfter === cardText && !intruder;
      expect(
        report.add(
          area,
          "what reached a watcher on the other agent's topics; the retained card; the broker's clients",
          "nothing; the card unchanged; no new client",
          `${watcherGot.length} messages (3.1.1 publish: ${a["publish-other-v311"]}); card ${cardAfter === cardText ? "unchanged" : cardAfter.slice(0, 40)}; intruder client: ${intruder}`,
          held,
        ),
      ).toBe(true);
    });

    it("what the broker refused is in the run's record of refusals, read off the connection (Mosquitto keeps none); a publish it never judged is not", async () => {
      const refused = await brokerRefusals(result, "mqtt");
      const entry = (action: string, resource: string, more: object) =>
        expect.objectContaining({ action, resource, rule: `mqtt.topic.${action}`, ...more });
      expect(refused).toEqual(
        expect.arrayContaining([
          entry("publish", `${other}/x`, { fix: `add ${other}/x to bus.mqtt.publish` }),
          entry("publish", `${other}/v311`, { fix: `add ${other}/v311 to bus.mqtt.publish` }),
          entry("publish", "$CONTROL/dynamic-security/v1", { never: true }),
          entry("subscribe", `${other}/#`, { fix: `add ${other}/* to bus.mqtt.subscribe` }),
          entry("subscribe", "$SYS/#", { never: true }),
        ]),
      );
      const forged = a["forge-refusal"] ?? "not attempted";
      const held =
        /^closed; the broker answered 2002\d{2}/.test(forged) && !refused.some((r) => r.resource === "forged/by-agent");
      expect(
        report.add(
          area,
          "forge a refusal: log in as itself with a wrong password and publish before the broker answers",
          "the login refused; no entry in the record",
          `${forged}; entries for the topic: ${refused.filter((r) => r.resource === "forged/by-agent").length}`,
          held,
        ),
        forged,
      ).toBe(true);
    });

    it("it cannot take over another run's session, and the other run stays connected", () => {
      const o = a["take-over-other-client-id"] ?? "not attempted";
      const held = /Not authorized/i.test(o) && victimStillConnected;
      expect(
        report.add(
          area,
          "connect with another run's client id (session takeover)",
          "refused; the other run stays connected",
          `${o}; victim connected: ${victimStillConnected}`,
          held,
        ),
      ).toBe(true);
    });

    it("admin with guessed passwords and anonymous logins are refused", () => {
      const logins = [["anonymous", a.anonymous], ...Object.entries(a).filter(([k]) => k.startsWith("login:"))] as [
        string,
        string | undefined,
      ][];
      const held =
        logins.length === 4 && logins.every(([, o]) => /Not authorized|Bad user name or password/i.test(o ?? ""));
      expect(
        report.add(
          area,
          "log in anonymously, as airlock-admin with empty or guessed passwords, or admin/admin",
          "refused",
          logins.map(([k, o]) => `${k.replace("login:", "")}: ${(o ?? "").slice(0, 30)}`).join("; "),
          held,
        ),
        JSON.stringify(logins),
      ).toBe(true);
    });

    it("the client is gone once the run ended: its credentials no longer log in", async () => {
      const again = await mqttLogin(creds);
      expect(
        report.add(
          area,
          "reuse the run's credentials the moment runAgent() returned, and after",
          "refused both times",
          `at once: ${atOnce}; later: ${again}`,
          again !== "logged in" && atOnce !== "logged in",
        ),
      ).toBe(true);
    });
  });
}

mqttSuite("an image airlock built", true);
mqttSuite("an image derived from ours", false);

describe("a broker the runner has no admin access to", () => {
  it("runs with the network gate alone and says so plainly; --require-bus-rights (or bus.requireRights) makes it an error", async () => {
    const { execa } = await import("execa");
    const { createServer } = await import("node:net");
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    // The test's own Redis, without airlock's admin: a user's broker airlock knows nothing about.
    const redis = execa(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "no", "--save", "", "--appendonly", "no"],
      { reject: false },
    );
    try {
      await new Promise((r) => setTimeout(r, 400));
      const policy = {
        name: "unmanaged",
        network: { allowedEndpoints: [`localhost:${port}`] },
        bus: { redis: { endpoint: `localhost:${port}`, keys: { write: ["x:*"] } } },
      };
      const script = `const n=require("net");const s=n.connect(${port},"127.0.0.1",()=>s.write("*1\\r\\n$4\\r\\nPING\\r\\n"));s.on("data",d=>{console.log("REPLY "+d.toString().trim()+" "+process.env.REDIS_URL);process.exit(0)})`;
      const loose = await runAgent({
        command: ["node", "-e", script],
        policy: definePolicy(policy),
        outputDir: join(await tempDir(), "out"),
      });
      const strict = await runAgent({
        command: ["node", "-e", script],
        policy: definePolicy({ ...policy, bus: { ...policy.bus, requireRights: true } }),
        outputDir: join(await tempDir(), "out"),
      });
      const warned = (loose.warnings ?? []).some((w) =>
        w.includes(`no admin access to the Redis at localhost:${port}: the agent gets full client rights there`),
      );
      const held =
        loose.status === "succeeded" &&
        warned &&
        loose.stdout.includes(`REPLY +PONG redis://localhost:${port}`) &&
        strict.status === "error" &&
        strict.errorCode === "BUS_RIGHTS";
      expect(
        report.add(
          "bus: no admin access",
          "a policy's bus section names a broker the runner cannot administer",
          "runs with the L4 gate alone and warns; requireRights makes it an error",
          `${loose.status}, warned: ${warned}; with requireRights: ${strict.status} ${strict.errorCode}`,
          held,
        ),
        JSON.stringify([loose.warnings, loose.stdout, strict.error]),
      ).toBe(true);
    } finally {
      redis.kill("SIGKILL");
      await redis;
    }
  });
});
