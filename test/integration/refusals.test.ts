/**
 * One record of refusals, as an agent and a user meet it: an agent refused by its brokers and by the
 * gate reads its refusals while it runs (ctx.denials() in TypeScript, airlock.denials() in Python),
 * and the same entries, with the policy line that would allow each, are in the result, in
 * out/<name>.denials.jsonl, in the CLI's "refused" section and in the failure reason. Every broker
 * kind in both languages, each with the clients agents use: Redis, RabbitMQ, Kafka, NATS (the
 * brokers' own records) and MQTT (read off the connection). Real engine, real brokers.
 */
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { definePolicy, runAgent } from "../../runner/index.js";
import { packagePath } from "../../runner/paths.js";
import type { Refusal } from "../../runner/run/refusals.js";
import { AGENTS, tempDir } from "./helpers.js";

const CLI = packagePath("dist", "runner", "cli", "main.js");

const jsonl = async (file: string) =>
  (await readFile(file, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Refusal);

/**
 * `airlock run` of an agent (its path under AGENTS) under a policy written to `file`: what the CLI
 * printed, what the agent recorded in /output/denials.json, and the run's JSONL file.
 */
async function cliRun<Seen>(agent: string, file: string, policy: string) {
  const dir = await tempDir();
  const policyFile = join(dir, file);
  await writeFile(policyFile, policy);
  const run = await execa(
    "node",
    [CLI, "run", join(AGENTS, agent), "--policy", policyFile, "--output", join(dir, "out")],
    { reject: false, env: { NO_COLOR: "1" } },
  );
  expect(run.exitCode, run.stdout + run.stderr).toBe(0);
  return {
    run,
    seen: JSON.parse(await readFile(join(dir, "out", "denials.json"), "utf8")) as Seen,
    jsonl: await jsonl(join(dir, "out.denials.jsonl")),
  };
}

describe("refusals, as the agent and the user see them", () => {
  it("TypeScript: a Redis key and a localhost port refused; ctx.denials() has both while it runs, and so do the result, its JSONL file and the failure reason", async () => {
    const out = join(await tempDir(), "out");
    const result = await runAgent({
      agent: join(AGENTS, "refused.ts"),
      policy: definePolicy({
        name: "refused-ts",
        network: { allowedEndpoints: ["localhost:6379"] },
        bus: { redis: { keys: { read: ["mine:{run}:*"] } } },
        timeoutSeconds: 60,
      }),
      outputDir: out,
      requireBusRights: true,
    });
    expect(result.status, result.stderr + result.error).toBe("failed");
    expect(result.exitCode).toBe(3);
    const seen = JSON.parse(await readFile(join(out, "denials.json"), "utf8")) as {
      said: string;
      denials: Refusal[];
      tamper: string[];
    };
    expect(seen.said).toMatch(/NOPERM/);
    // It could neither add an entry nor remove the file.
    expect(seen.tamper).toEqual([expect.stringMatching(/^(EROFS|EACCES)$/), "EROFS"]);
    expect([...seen.denials, ...result.refusals].some((r) => r.resource === "forged")).toBe(false);
    const key = expect.objectContaining({
      layer: "broker",
      kind: "redis",
      resourceType: "key",
      resource: "not-mine:secret",
      rule: "redis.key.get",
      fix: "add a pattern for not-mine:secret to bus.redis.keys.read (or keys.write)",
    });
    const port = expect.objectContaining({
      layer: "network",
      resource: "localhost:6390",
      rule: "network.loopback",
      fix: expect.stringMatching(/^add localhost:6390 to network\.allowedEndpoints/),
    });
    // While it ran: the broker's refusal, and the gate's (a root runner reads the kernel's tables mid-run).
    expect(seen.denials).toEqual(expect.arrayContaining([key, ...(process.getuid?.() === 0 ? [port] : [])]));
    // After: the same entries in the result and beside it.
    expect(result.refusals).toEqual(expect.arrayContaining([key, port]));
    expect(result.refusalsFile).toBe(join(dirname(out), "out.denials.jsonl"));
    expect(await jsonl(result.refusalsFile)).toEqual(result.refusals);
    // The failure says what was refused and what would allow it.
    expect(result.error).toMatch(
      /^the agent exited with code 3; refused during the run: .*redis get key not-mine:secret \(fix: add a pattern/,
    );
  });

  it("Python: pika's ACCESS_REFUSED is in airlock.denials() and in the CLI's refused section, with the line to add", async () => {
    const {
      run,
      seen,
      jsonl: file,
    } = await cliRun<{ said: string; denials: Refusal[] }>(
      join("python", "refused.py"),
      "refused.yaml",
      [
        "name: refused-py",
        "network:",
        "  allowedEndpoints: [localhost:5672]",
        "bus:",
        "  rabbitmq:",
        "    queues:",
        '      consume: ["mine.{run}"]',
        "timeoutSeconds: 60",
        "",
      ].join("\n"),
    );
    expect(seen.said).toMatch(/^403 ACCESS_REFUSED/);
    const entry = {
      layer: "broker",
      kind: "rabbitmq",
      action: "declare",
      resourceType: "queue",
      resource: "not-mine.tasks",
      rule: "rabbitmq.queue.declare",
      fix: "add not-mine.tasks to bus.rabbitmq.queues.publish if the agent publishes to it, or bus.rabbitmq.queues.consume if it consumes from it (the runner declares it either way)",
    };
    expect(seen.denials).toContainEqual(expect.objectContaining(entry));
    expect(file).toContainEqual(expect.objectContaining(entry));
    // Under the summary line: the refused section, with the policy to edit and the JSONL file.
    const lines = run.stdout.split("\n");
    const summary = lines.findIndex((l) => /✔ refused/.test(l));
    expect(summary, run.stdout).toBeGreaterThanOrEqual(0);
    expect(lines[summary + 1]).toMatch(
      /^refused: refused 1 thing \(lines to add go in .*refused\.yaml; all of them in .*out\.denials\.jsonl\):$/,
    );
    expect(lines[summary + 2]).toMatch(
      /rabbitmq declare queue not-mine\.tasks\s+1×\s+→ add not-mine\.tasks to bus\.rabbitmq\.queues\.publish if the agent publishes to it, or bus\.rabbitmq\.queues\.consume/,
    );
  });

  const mqttPolicy = (name: string) =>
    [
      `name: ${name}`,
      "network:",
      "  allowedEndpoints: [localhost:1883]",
      "bus:",
      "  mqtt:",
      '    publish: ["rooms/{run}/chat"]',
      '    subscribe: ["rooms/{run}/*"]',
      "timeoutSeconds: 60",
      "",
    ].join("\n");
  const mqttEntry = (action: "publish" | "subscribe", topic: string, pattern = topic) =>
    expect.objectContaining({
      layer: "broker",
      kind: "mqtt",
      action,
      resourceType: "topic",
      resource: topic,
      rule: `mqtt.topic.${action}`,
      fix: `add ${pattern} to bus.mqtt.${action}`,
    });

  it("TypeScript, MQTT 5: Mosquitto's refused subscription and publish, which it records nowhere, are read off the connection: in ctx.denials(), the result and its JSONL file", async () => {
    const dir = await tempDir();
    const policyFile = join(dir, "refused-mqtt.yaml");
    await writeFile(policyFile, mqttPolicy("refused-mqtt-ts"));
    const out = join(dir, "out");
    const result = await runAgent({
      agent: join(AGENTS, "refused-mqtt.ts"),
      policy: policyFile,
      outputDir: out,
      requireBusRights: true,
    });
    expect(result.status, result.stderr + result.error).toBe("succeeded");
    const seen = JSON.parse(await readFile(join(out, "denials.json"), "utf8")) as {
      subscribed: string;
      published: string;
      denials: Refusal[];
    };
    // What the client itself was told: 0x87 (not authorized) for both.
    expect(seen.subscribed).toMatch(/Not authorized/);
    expect(seen.published).toMatch(/135|authori[sz]ed/i);
    const refused = [
      mqttEntry("subscribe", "rooms/secret/#", "rooms/secret/*"),
      mqttEntry("publish", "rooms/other/chat"),
    ];
    expect(seen.denials).toEqual(expect.arrayContaining(refused));
    expect(result.refusals).toEqual(expect.arrayContaining(refused));
    // The publish it may do is not a refusal.
    expect(result.refusals.filter((r) => r.kind === "mqtt")).toHaveLength(2);
    expect(await jsonl(result.refusalsFile)).toEqual(result.refusals);
  });

  it("Python, MQTT 3.1.1 (paho's defaults): a refused subscription and a QoS 0 publish the broker answers with nothing are in airlock.denials() and the CLI's refused section", async () => {
    const {
      run,
      seen,
      jsonl: file,
    } = await cliRun<{ subscribed: number[]; denials: Refusal[] }>(
      join("python", "refused_mqtt.py"),
      "refused-mqtt.yaml",
      mqttPolicy("refused-mqtt-py"),
    );
    expect(seen.subscribed).toEqual([0x80]);
    const refused = [
      mqttEntry("subscribe", "rooms/secret/#", "rooms/secret/*"),
      mqttEntry("publish", "rooms/other/chat"),
    ];
    expect(seen.denials).toEqual(expect.arrayContaining(refused));
    expect(file).toEqual(expect.arrayContaining(refused));
    const lines = run.stdout.split("\n");
    const summary = lines.findIndex((l) => /✔ refused_mqtt/.test(l));
    expect(summary, run.stdout).toBeGreaterThanOrEqual(0);
    expect(lines[summary + 1]).toMatch(/^refused_mqtt: refused 2 things \(lines to add go in .*refused-mqtt\.yaml;/);
    expect(run.stdout).toMatch(
      /mqtt subscribe topic rooms\/secret\/#\s+1×\s+→ add rooms\/secret\/\* to bus\.mqtt\.subscribe/,
    );
    expect(run.stdout).toMatch(
      /mqtt publish topic rooms\/other\/chat\s+1×\s+→ add rooms\/other\/chat to bus\.mqtt\.publish/,
    );
  });

  it.each([
    ["TypeScript (nats.js, kafkajs, amqplib)", "refused-streams.ts", "refused-streams", "rabbitmq"],
    ["Python (nats-py, kafka-python, redis-py)", join("python", "refused_streams.py"), "refused_streams", "redis"],
  ])(
    "%s: NATS', Kafka's and a third broker's refusals are in the agent's own list, the JSONL file and the CLI's refused section, with the lines to add",
    async (_, agent, name, third) => {
      const {
        run,
        seen,
        jsonl: file,
      } = await cliRun<{ produced: string; denials: Refusal[] }>(
        agent,
        "streams.yaml",
        [
          "name: refused-streams",
          "network:",
          `  allowedEndpoints: [localhost:4222, localhost:9092, ${third === "redis" ? "localhost:6379" : "localhost:5672"}]`,
          "bus:",
          "  nats:",
          '    publish: ["mine.{run}.*"]',
          "  kafka:",
          "    topics:",
          '      produce: ["mine-{run}"]',
          ...(third === "redis"
            ? ["  redis:", "    keys:", '      read: ["mine:{run}:*"]']
            : ["  rabbitmq:", "    exchanges:", '      publish: ["mine-{run}"]']),
          "timeoutSeconds: 90",
          "",
        ].join("\n"),
      );
      expect(seen.produced).toMatch(/authori[sz]/i);
      const refused = [
        expect.objectContaining({
          kind: "nats",
          action: "publish",
          resource: "other.subject",
          rule: "nats.subject.publish",
          fix: "add other.subject to bus.nats.publish",
        }),
        expect.objectContaining({
          kind: "kafka",
          resourceType: "topic",
          resource: "not-mine",
          fix: expect.stringMatching(/^add not-mine to bus\.kafka\.topics\.(produce|consume)/),
        }),
        third === "redis"
          ? expect.objectContaining({ kind: "redis", resource: "not-mine:secret", rule: "redis.key.get" })
          : expect.objectContaining({
              kind: "rabbitmq",
              action: "publish",
              resource: "not-mine",
              fix: "add not-mine to bus.rabbitmq.exchanges.publish",
            }),
      ];
      expect(seen.denials).toEqual(expect.arrayContaining(refused));
      expect(file).toEqual(expect.arrayContaining(refused));
      expect(run.stdout).toMatch(
        new RegExp(`^${name}: refused \\d+ things? \\(lines to add go in .*streams\\.yaml;`, "m"),
      );
      expect(run.stdout).toMatch(
        /nats publish subject other\.subject\s+\d+×\s+→ add other\.subject to bus\.nats\.publish/,
      );
      expect(run.stdout).toMatch(/kafka \w+ topic not-mine\s+\d+×\s+→ add not-mine to bus\.kafka\.topics\./);
    },
    120_000,
  );
});
