/**
 * The four producer/consumer examples, in TypeScript and in Python, run as a CI job would run them
 * (runAgents / airlock up) against the real Redis, RabbitMQ and Kafka, with their outputs asserted.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { runAgents, type GroupResult } from "../../runner/index.js";
import { packagePath } from "../../runner/paths.js";
import { leftoverContainers, tempDir } from "./helpers.js";

async function runExample(folder: string, runFile = "run.yaml"): Promise<{ group: GroupResult; read: (agent: string, file: string) => Promise<string> }> {
  const out = await tempDir();
  const group = await runAgents(packagePath("examples", folder, runFile), { outputDir: out });
  for (const r of group.results) expect(`${r.name}: ${r.status}`, `${r.error ?? ""}\n${r.stderr}`).toBe(`${r.name}: succeeded`);
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
      expect(await read("consumer", "summary.txt")).toMatch(new RegExp(`^Received 10 messages from agent-events:${lang.run}redis-pubsub-`));
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
      expect(JSON.parse(await read("requester", "results.json"))).toEqual([10, 20, 30, 40, 50].map((x) => ({ x, y: 20, result: x + 20 })));
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
    expect((await read("consumer", "results.txt")).trim().split("\n")).toEqual(Array.from({ length: 10 }, (_, i) => `Processed: Process item ${i}`));
    expect(consumer!.returnValue).toEqual({ received: 10 });
    expect(producer!.returnValue).toEqual({ published: 10, delivered: 10 });
  });
});

describe("airlock up", () => {
  it("prints a summary table, writes JUnit XML, and exits 0 when every agent succeeded", async () => {
    const out = await tempDir();
    const run = await execa("node", [packagePath("dist", "runner", "cli", "main.js"), "up", packagePath("examples", "redis-request-reply", "run.yaml"), "--output", out, "--junit", join(out, "junit.xml")], { reject: false, env: { NO_COLOR: "1" } });
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

describe("example 5: bus rights", () => {
  it("an agent that steps outside its rights is refused by the broker, and the CLI names the policy line", async () => {
    const out = await tempDir();
    const up = await execa("node", [packagePath("dist", "runner", "cli", "main.js"), "up", packagePath("examples", "bus-rights", "run.yaml"), "--output", out], { reject: false, env: { NO_COLOR: "1" } });
    expect(up.exitCode, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain("snooper | read billing:secrets: NOPERM");
    expect(up.stdout).toContain("snooper | CONFIG GET dir: NOPERM");
    expect(up.stdout).toMatch(/the broker refused 2 things \(rights from bus in .*policies\/bus-rights-snooper\.yaml\)/);
    expect(up.stdout).toMatch(/redis\s+key billing:secrets \(get\)\s+1×\s+→ add a pattern for billing:secrets to bus\.redis\.keys\.read/);
    expect(up.stdout).toMatch(/redis\s+command config\|get\s+1×\s+→ never granted to agents/);
  });
});
