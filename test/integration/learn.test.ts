/**
 * `airlock learn` over the repository's own examples, on the real brokers: each run file's agents
 * learn the bus rights they use from what their brokers refuse, the last round passes under the
 * learnt policies, every learnt line is covered by the hand-written policy (as tight or tighter),
 * and one operation more than was learnt is refused with the line to add. The network is never
 * widened: learning runs under the policy's own endpoints.
 */
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { definePolicy, runAgent } from "../../runner/index.js";
import { learnRun, type LearnResult } from "../../runner/learn/learn.js";
import { packagePath } from "../../runner/paths.js";
import { tempDir } from "./helpers.js";

const CLI = packagePath("dist", "runner", "cli", "main.js");

/** Whether a hand-written list (patterns with {run}, {agent}, a * for a token or, last, the rest) covers a learnt name. */
function covers(patterns: string[], learnt: string): boolean {
  const anywhere = (p: string) =>
    new RegExp(
      `^${p
        .split("*")
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
    );
  return patterns.some(
    (p) => (p.endsWith("*") && learnt.replace(/\*$/, "").startsWith(p.slice(0, -1))) || anywhere(p).test(learnt),
  );
}

/** Every learnt line is allowed by the hand-written policy (keys.write covers keys.read). */
function asTight(result: LearnResult, handWritten: Record<string, unknown>): string[] {
  const loose: string[] = [];
  const at = (root: unknown, path: string[]) =>
    (path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], root) as string[]) ?? [];
  // What the learnt policy grants (a Kafka describe learnt before its produce is not in it).
  for (const l of result.learnt.filter(
    (x) => x.value !== true && at(result.policy, x.path).includes(x.value as string),
  )) {
    const lists = [l.path, ...(l.path.join(".").endsWith("keys.read") ? [[...l.path.slice(0, -1), "write"]] : [])];
    if (!lists.some((p) => covers(at(handWritten, p), l.value as string))) loose.push(`${l.path.join(".")} ${l.value}`);
  }
  return loose;
}

const EXAMPLES = [
  ["TypeScript", "redis-pubsub"],
  ["TypeScript", "redis-request-reply"],
  ["TypeScript", "rabbitmq-work-queue"],
  ["TypeScript", "kafka-streaming"],
  ["TypeScript", "nats-inbox"],
  ["TypeScript", "mqtt-room"],
  ["Python", "python/redis-pubsub"],
  ["Python", "python/rabbitmq-work-queue"],
  ["Python", "python/kafka-streaming"],
] as const;

describe("airlock learn, over the examples", () => {
  it.each(EXAMPLES)(
    "%s %s: the learnt policies pass, and are as tight as the hand-written ones",
    async (_, example) => {
      const results = await learnRun(packagePath("examples", example, "run.yaml"), {
        outputDir: join(await tempDir(), "learn"),
        maxRuns: 6,
      });
      for (const [file, result] of results) {
        const last = result.runs.at(-1)!;
        expect(result.passed, `${file}: ${last.status} ${last.error ?? ""}`).toBe(true);
        const hand = parse(await readFile(file, "utf8")) as Record<string, unknown>;
        expect(asTight(result, hand), file).toEqual([]);
      }
    },
    300_000,
  );

  it("the CLI writes <policy>.learned.yaml with a comment for each line and a diff; one operation more is refused with the line to add", async () => {
    // A copy of the example and its policies: the learnt files are written beside the policies.
    const dir = await mkdtemp(join(tmpdir(), "airlock-learn-"));
    await cp(packagePath("examples", "redis-pubsub"), join(dir, "example"), { recursive: true });
    await cp(packagePath("policies"), join(dir, "policies"), { recursive: true });
    await writeFile(
      join(dir, "example", "run.yaml"),
      (await readFile(join(dir, "example", "run.yaml"), "utf8")).replaceAll("../../policies/", "../policies/"),
    );
    const run = await execa("node", [CLI, "learn", join(dir, "example", "run.yaml"), "--output", join(dir, "out")], {
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^run 1: failed · learnt 1: redis\.subscribe \+= agent-events:\{run\}$/m);
    expect(run.stdout).toMatch(/^\+\s+- agent-events:\{run\} # learnt: redis publish channel agent-events:/m);
    expect(run.stdout).toContain("✔ the last run passed with nothing left to learn");
    const learnt = join(dir, "policies", "redis-pubsub-producer.learned.yaml");
    const text = await readFile(learnt, "utf8");
    expect(text).toMatch(/^# Learnt by `airlock learn` from \d runs of /);
    expect((parse(text) as { bus: unknown }).bus).toEqual({ redis: { publish: ["agent-events:{run}"] } });
    // Under the learnt policy, one publish more is refused, and the refusal names the line to add.
    const agent = join(dir, "one-more.ts");
    await writeFile(
      agent,
      [
        'import { defineAgent } from "airlock/agent";',
        "export default defineAgent(async (ctx) => {",
        "  const redis = await ctx.bus.redis();",
        "  const run = ctx.env.AIRLOCK_GROUP_RUN_ID;",
        "  await redis.publish('agent-events:' + run, 'ok');",
        "  await redis.publish('audit:' + run, 'one more').catch(() => {});",
        "});",
        "",
      ].join("\n"),
    );
    const policy = definePolicy(parse(text) as never, learnt);
    const result = await runAgent({
      agent,
      policy,
      outputDir: join(dir, "one-more"),
      group: { name: "one-more", runId: "one-more-1" },
    });
    expect(result.status, result.error).toBe("succeeded");
    expect(result.refusals).toEqual([
      expect.objectContaining({
        rule: "redis.channel.publish",
        resource: "audit:one-more-1",
        fix: "add audit:one-more-1 to bus.redis.publish",
      }),
    ]);
  }, 300_000);
});
