/**
 * The four producer/consumer examples, in TypeScript and in Python, run as a CI job would run them
 * (runAgents / airlock up) against the real Redis, RabbitMQ and Kafka, with their outputs asserted.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { definePolicy, runAgent, runAgents, type GroupResult } from "../../runner/index.js";
import { packagePath } from "../../runner/paths.js";
import { AGENTS, leftoverContainers, localBrokerAdmin, tempDir } from "./helpers.js";

async function runExample(
  folder: string,
  runFile = "run.yaml",
): Promise<{ group: GroupResult; read: (agent: string, file: string) => Promise<string> }> {
  const out = await tempDir();
  const group = await runAgents(packagePath("examples", folder, runFile), { outputDir: out });
  for (const r of group.results)
    expect(`${r.name}: ${r.status}`, `${r.error ?? ""}\n${r.stderr}`).toBe(`${r.name}: succeeded`);
  expect(await leftoverContainers()).toEqual([]);
  return { group, read: (agent, file) => readFile(join(out, agent, file), "utf8") };
}

// The same four scenarios in each language: TypeScript with ctx.bus, Python as the SDK's page writes
// them (redis-py, pika, kafka-python), with their policies' pip packages installed at build time.
for (const lang of [
  { label: "TypeScript", dir: "", run: "" },
  { label: "Python", dir: "python/", run: "py-" },
]) {
  describe(`example 1 in ${lang.label}: Redis publish/subscribe`, () => {
    it("the consumer, started first, receives all 10 messages and writes them out", async () => {
      const { group, read } = await runExample(`${lang.dir}redis-pubsub`);
      expect(group.results.map((r) => r.name)).toEqual(["consumer", "producer"]);
      const lines = (await read("consumer", "results.txt")).trim().split("\n");
      expect(lines).toEqual(Array.from({ length: 10 }, (_, i) => `Processed: Process item ${i}`));
      expect(await read("consumer", "summary.txt")).toMatch(
        new RegExp(`^Received 10 messages from agent-events:${lang.run}redis-pubsub-`),
      );
      expect(group.results[1]!.returnValue).toEqual({ published: 10, delivered: 10 });
    });
  });

  describe(`example 2 in ${lang.label}: RabbitMQ work queue`, () => {
    it("two workers with prefetch 1 process every task exactly once between them", async () => {
      const { read } = await runExample(`${lang.dir}rabbitmq-work-queue`);
      const a = JSON.parse(await read("worker-1", "results.json")) as { tasks: number[] };
      const b = JSON.parse(await read("worker-2", "results.json")) as { tasks: number[] };
      expect([...a.tasks, ...b.tasks].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(a.tasks.length).toBeGreaterThan(0);
      expect(b.tasks.length).toBeGreaterThan(0);
    });
  });

  describe(`example 3 in ${lang.label}: Kafka event streaming`, () => {
    it("a consumer in a group reads all 100 events from the earliest offset", async () => {
      const { read } = await runExample(`${lang.dir}kafka-streaming`);
      const lines = (await read("consumer", "results.txt")).trim().split("\n");
      expect(lines).toHaveLength(100);
      // Python prints floats as floats.
      expect(lines[0]).toBe(lang.dir ? "Processed event 0: value=0.0" : "Processed event 0: value=0");
      expect(lines[99]).toBe("Processed event 99: value=148.5");
      expect(await read("consumer", "summary.txt")).toBe("Processed 100 events\n");
    });
  });

  describe(`example 4 in ${lang.label}: Redis request/reply`, () => {
    it("the requester gets a reply to each of its 5 requests", async () => {
      const { read } = await runExample(`${lang.dir}redis-request-reply`);
      expect(JSON.parse(await read("requester", "results.json"))).toEqual(
        [10, 20, 30, 40, 50].map((x) => ({ x, y: 20, result: x + 20 })),
      );
      expect(await read("replier", "summary.txt")).toBe("Processed 5 requests\n");
    });
  });
}

describe("one pair, two languages", () => {
  it("a Python producer's events reach a TypeScript consumer, which checks each against its zod schema", async () => {
    const { group, read } = await runExample("python/redis-pubsub", "with-ts-consumer.run.yaml");
    const [consumer, producer] = group.results;
    expect(consumer!.image).toMatch(/^airlock\/agent-packages:/);
    expect(producer!.image).toMatch(/^airlock\/python-packages:/);
    expect((await read("consumer", "results.txt")).trim().split("\n")).toEqual(
      Array.from({ length: 10 }, (_, i) => `Processed: Process item ${i}`),
    );
    expect(consumer!.returnValue).toEqual({ received: 10 });
    expect(producer!.returnValue).toEqual({ published: 10, delivered: 10 });
  });
});

describe("example: an AI agent pair (examples/ai-agent)", () => {
  // The model API by name with the key held by the gate; a stand-in provider on this machine.
  for (const [language, runFile, says] of [
    ["TypeScript (fetch, streamed)", "run.yaml", /^asker\s+\| the model answered in 11 tokens: /m],
    ["Python (requests and httpx, streamed)", "python.run.yaml", /^asker\s+\| the model answered in 11 tokens: /m],
  ] as const) {
    it(`${language}: the asker calls the API by name without its key, the listener gets the answer`, async () => {
      const out = await tempDir();
      const run = await execa("node", [packagePath("examples", "ai-agent", "demo.mjs"), runFile, "--output", out], {
        reject: false,
        env: { NO_COLOR: "1", EXAMPLE_MODEL_KEY: "sk-example-in-ci" },
      });
      expect(run.exitCode, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toMatch(says);
      expect(await readFile(join(out, "listener", "answer.txt"), "utf8")).toBe(
        'You asked: "What is six times seven?". The answer is 42.\n',
      );
      const asker = JSON.parse(await readFile(join(out, "asker.result.json"), "utf8")) as { denied: unknown[] };
      expect(asker.denied).toEqual([]);
      expect(await leftoverContainers()).toEqual([]);
    });
  }
});

describe("airlock up", () => {
  it("prints a summary table, writes JUnit XML, and exits 0 when every agent succeeded", async () => {
    const out = await tempDir();
    const run = await execa(
      "node",
      [
        packagePath("dist", "runner", "cli", "main.js"),
        "up",
        packagePath("examples", "redis-request-reply", "run.yaml"),
        "--output",
        out,
        "--junit",
        join(out, "junit.xml"),
      ],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^requester \| 50 \+ 20 = 70$/m);
    expect(run.stdout).toMatch(/^AGENT\s+STATUS\s+EXIT\s+DURATION\s+OUTPUT FILES$/m);
    expect(run.stdout).toMatch(/^replier\s+succeeded\s+0\s+\S+\s+summary\.txt$/m);
    expect(run.stdout).toMatch(/✔ redis-request-reply: all 2 agents succeeded/);
    const xml = await readFile(join(out, "junit.xml"), "utf8");
    expect(xml).toContain('<testsuite name="redis-request-reply" tests="2" failures="0" errors="0" skipped="0"');
    expect(xml).toMatch(/<testcase classname="redis-request-reply" name="requester" time="[\d.]+">/);
  });
});

describe("warm starts", () => {
  const docker = process.env.AIRLOCK_BACKEND !== "kubernetes";

  it.runIf(docker)(
    "airlock up starts the agent that waits for another from a sandbox its pool started meanwhile",
    async () => {
      const out = await tempDir();
      const run = await execa(
        "node",
        [
          packagePath("dist", "runner", "cli", "main.js"),
          "up",
          packagePath("examples", "redis-pubsub", "run.yaml"),
          "--output",
          out,
          "--json",
        ],
        { reject: false, env: { NO_COLOR: "1" } },
      );
      expect(run.exitCode, run.stderr).toBe(0);
      const group = JSON.parse(run.stdout) as GroupResult;
      expect(group.results.map((r) => [r.name, r.startup?.how])).toEqual([
        ["consumer", "new sandbox"],
        ["producer", "pooled sandbox"],
      ]);
      expect(await leftoverContainers()).toEqual([]);
    },
  );

  it("the fan-out example: one agent per item, each result pushed to Redis with the run's own identity; after the first, they start warm", async () => {
    const run = await execa(
      "node",
      [packagePath("examples", "warm-pool", "fan-out.mjs"), "alpha", "bravo", "charlie", "delta"],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(run.exitCode, run.stderr).toBe(0);
    const rows = run.stdout.split("\n").filter((l) => /^(alpha|bravo|charlie|delta)\s/.test(l));
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row).toMatch(/succeeded \{"item":/);
    if (docker) expect(rows.filter((r) => /\swarm\s/.test(r)).length).toBeGreaterThanOrEqual(2);
    expect(await leftoverContainers()).toEqual([]);
  });
});

describe("example 5: bus rights", () => {
  it("an agent that steps outside its rights is refused by the broker, and the CLI names the policy line", async () => {
    const out = await tempDir();
    const up = await execa(
      "node",
      [
        packagePath("dist", "runner", "cli", "main.js"),
        "up",
        packagePath("examples", "bus-rights", "run.yaml"),
        "--output",
        out,
      ],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(up.exitCode, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain("snooper | read billing:secrets: NOPERM");
    expect(up.stdout).toContain("snooper | CONFIG GET dir: NOPERM");
    // The agent read its refusals while it ran, with the line that would allow each (on a Pod too).
    expect(up.stdout).toContain(
      "snooper | refused redis get billing:secrets: would need: add a pattern for billing:secrets to bus.redis.keys.read (or keys.write)",
    );
    expect(up.stdout).toContain("snooper | refused redis command config|get: none: never granted to agents");
    expect(up.stdout).toMatch(
      /snooper: refused 2 things \(lines to add go in .*policies\/bus-rights-snooper\.yaml; all of them in .*snooper\.denials\.jsonl\)/,
    );
    expect(up.stdout).toMatch(
      /redis get key billing:secrets\s+1×\s+→ add a pattern for billing:secrets to bus\.redis\.keys\.read/,
    );
    expect(up.stdout).toMatch(/redis command config\|get\s+1×\s+✖ none: never granted to agents/);
  });
});

describe("agent-to-agent messaging over MQTT and NATS, behind the gate and with bus rights", () => {
  it("a room of three over MQTT: hello to everyone, replies to it, a whisper only its addressee hears", async () => {
    const { group, read } = await runExample("mqtt-room");
    const byName = Object.fromEntries(group.results.map((r) => [r.name, r.returnValue]));
    expect(byName.alice).toEqual({ replies: ["bob", "carol"], overheard: 0 });
    expect(byName.bob).toEqual({ received: ["alice→all", "carol→bob (reply)"] });
    expect(byName.carol).toEqual({ received: ["alice→all", "bob→carol"] });
    const replies = JSON.parse(await read("alice", "replies.json")) as {
      from: string;
      to: string;
      inReplyTo: string;
      body: string;
    }[];
    expect(replies.map((r) => [r.from, r.to, r.body]).sort()).toEqual([
      ["bob", "alice", "hi alice, bob here"],
      ["carol", "alice", "hi alice, carol here"],
    ]);
    // Every publish and subscription was within the members' rights: the gate read them all off the
    // connections (their refusals would be in the record) and found nothing refused.
    expect(group.results.flatMap((r) => r.refusals)).toEqual([]);
  });

  it("discovery: the client finds the echo agent by its card's skill, the task goes submitted → working → completed, and the card is gone afterwards", async () => {
    const { group } = await runExample("a2a-discovery");
    const client = group.results.find((r) => r.name === "client")!;
    expect(client.returnValue).toEqual({
      agent: "echo",
      statuses: ["submitted", "working", "completed"],
      output: { text: "hello, agent" },
    });
    const mqtt = await import("mqtt");
    const admin = localBrokerAdmin("mqtt");
    const c = await mqtt.connectAsync(`mqtt://${admin.host}:${admin.port}`, {
      username: admin.user,
      password: admin.password,
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    const retained: string[] = [];
    c.on("message", (t, m) => m.length && retained.push(t));
    await c.subscribeAsync(`a2a/${group.runId}/cards/+`, { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    await c.endAsync();
    expect(retained).toEqual([]);
  });

  it("an agent stopped by its timeout takes its discovery card with it", async () => {
    let cardWhileRunning = "";
    const mqtt = await import("mqtt");
    const admin = localBrokerAdmin("mqtt");
    const c = await mqtt.connectAsync(`mqtt://${admin.host}:${admin.port}`, {
      username: admin.user,
      password: admin.password,
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    c.on("message", (_t, m) => (cardWhileRunning ||= m.toString()));
    const result = await runAgent({
      agent: join(AGENTS, "card-forever.ts"),
      policy: definePolicy({
        name: "card",
        network: { allowedEndpoints: ["localhost:1883"] },
        bus: { requireRights: true, mqtt: { publish: ["a2a/{run}/cards/{agent}"] } },
        timeoutSeconds: 3,
      }),
      outputDir: join(await tempDir(), "out"),
      onEvent: (e) => {
        if (e.type === "ready") void c.subscribeAsync("a2a/+/cards/card-forever", { qos: 1 });
      },
    });
    expect(result.status).toBe("timed_out");
    // It was there while the agent ran (the retained card reached a subscriber), and is gone now.
    expect(JSON.parse(cardWhileRunning)).toMatchObject({ name: "card-forever", description: "waits to be stopped" });
    const after = await mqtt.connectAsync(`mqtt://${admin.host}:${admin.port}`, {
      username: admin.user,
      password: admin.password,
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    const retained: string[] = [];
    after.on("message", (_t, m) => m.length && retained.push(m.toString()));
    await after.subscribeAsync("a2a/+/cards/card-forever", { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    await Promise.all([c.endAsync(), after.endAsync()]);
    expect(retained).toEqual([]);
  });

  it("inboxes over NATS: receipts for each send, a duplicate suppressed, an expired message refused, a request answered", async () => {
    const { group, read } = await runExample("nats-inbox");
    const sender = group.results.find((r) => r.name === "sender")!;
    const receiver = group.results.find((r) => r.name === "receiver")!;
    expect(sender.returnValue).toEqual({
      receipts: ["delivered", "delivered", "delivered", "duplicate", "expired", "delivered"],
      answer: "SHOUT THIS",
    });
    expect(receiver.returnValue).toEqual({
      handled: 5,
      statuses: ["delivered", "delivered", "delivered", "duplicate", "expired", "delivered", "delivered"],
    });
    const inbox = JSON.parse(await read("receiver", "inbox.json")) as { handled: string[] };
    expect(inbox.handled).toEqual(["first", "second", "third", "shout this", "bye"]);
  });

  it("sealed messages: a coordinator and four workers; replay and tampering refused; the broker carried no plaintext", async () => {
    const { connect } = await import("nats");
    const admin = localBrokerAdmin("nats");
    const tap = await connect({ servers: "127.0.0.1:4222", user: admin.user, pass: admin.password });
    const carried: string[] = [];
    const sub = tap.subscribe(">");
    void (async () => {
      for await (const m of sub) carried.push(`${m.subject} ${new TextDecoder().decode(m.data)}`);
    })();
    try {
      const { group } = await runExample("sealed-workers");
      const coordinator = group.results.find((r) => r.name === "coordinator")!;
      expect(coordinator.returnValue).toMatchObject({
        workers: ["worker-1", "worker-2", "worker-3", "worker-4"],
        replay: "replayed",
        tampered: "bad-signature",
      });
      expect(
        Object.values((coordinator.returnValue as { sums: Record<string, number> }).sums).sort((a, b) => a - b),
      ).toEqual([3, 6, 9, 12]);
      await tap.flush();
      const tasks = carried.filter((c) => c.startsWith(`inbox.${group.runId}.`));
      // Every task and answer went over the broker (the tap saw them), and none in the clear.
      expect(tasks.length).toBeGreaterThanOrEqual(6);
      expect(carried.filter((c) => /attack at dawn|ATTACK AT DAWN|"numbers"|"sum"/.test(c))).toEqual([]);
    } finally {
      await tap.drain();
    }
  });
});
