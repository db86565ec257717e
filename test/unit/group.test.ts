import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRunFile, PolicyError, type AgentResult } from "../../runner/index.js";
import {
  junitXml,
  kafkaPreflight,
  KafkaPreflightError,
  parseEndpoint,
  runFileJsonSchema,
} from "../../runner/internal.js";

async function runFile(yaml: string) {
  const dir = await mkdtemp(join(tmpdir(), "airlock-runfile-"));
  await writeFile(join(dir, "a.ts"), "");
  await writeFile(join(dir, "p.yaml"), "name: p\n");
  await writeFile(join(dir, "run.yaml"), yaml);
  return { dir, load: () => loadRunFile(join(dir, "run.yaml")) };
}

async function problems(yaml: string) {
  const { load } = await runFile(yaml);
  const err = await load().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(PolicyError);
  return (err as PolicyError).issues;
}

describe("run files", () => {
  it("resolves paths against the run file and defaults outputs to agent names", async () => {
    const { dir, load } = await runFile(
      "name: pair\nagents:\n  consumer:\n    agent: a.ts\n    policy: p.yaml\n  producer:\n    agent: a.ts\n    policy: p.yaml\n    waitFor: { consumer: ready }\n",
    );
    const spec = await load();
    expect(spec.agents).toEqual([
      { name: "consumer", agent: join(dir, "a.ts"), policy: join(dir, "p.yaml"), output: "consumer", waitFor: {} },
      {
        name: "producer",
        agent: join(dir, "a.ts"),
        policy: join(dir, "p.yaml"),
        output: "producer",
        waitFor: { consumer: "ready" },
      },
    ]);
  });

  it("rejects unknown dependencies, cycles, bad conditions and missing files, with lines", async () => {
    expect(
      (await problems("name: r\nagents:\n  a:\n    agent: a.ts\n    policy: p.yaml\n    waitFor: { b: ready }\n"))[0],
    ).toMatchObject({ field: "agents.a.waitFor.b", line: 6, message: 'no agent named "b" in this run' });
    expect(
      (
        await problems(
          "name: r\nagents:\n  a:\n    agent: a.ts\n    policy: p.yaml\n    waitFor: { b: ready }\n  b:\n    agent: a.ts\n    policy: p.yaml\n    waitFor: { a: started }\n",
        )
      )[0]!.message,
    ).toMatch(/cycle: (a → b → a|b → a → b)/);
    expect(
      (
        await problems(
          "name: r\nagents:\n  a:\n    agent: a.ts\n    policy: p.yaml\n  b:\n    agent: a.ts\n    policy: p.yaml\n    waitFor: { a: done }\n",
        )
      )[0],
    ).toMatchObject({ field: "agents.b.waitFor.a", line: 9 });
    expect((await problems("name: r\nagents:\n  a:\n    agent: nope.ts\n    policy: p.yaml\n"))[0]).toMatchObject({
      field: "agents.a.agent",
      line: 4,
      message: expect.stringContaining("nope.ts does not exist"),
    });
    expect((await problems("name: r\nagents:\n  a:\n    policy: p.yaml\n"))[0]!.message).toBe(
      "give either agent or command",
    );
    expect((await problems("name: r\nagents: {}\n"))[0]!.message).toBe("lists no agents");
  });

  it("names a bad agent name with the rename to make, a bad condition with the conditions, and every other error beside them", async () => {
    const found = await problems(
      "name: r\nagents:\n  Producer:\n    agent: a.ts\n    policy: p.yaml\n    waitFor: { consumer: running }\n  consumer:\n    agent: a.ts\n    polcy: p.yaml\n",
    );
    expect(found.map((p) => p.field)).toEqual(
      expect.arrayContaining([
        "agents.Producer",
        "agents.Producer.waitFor.consumer",
        "agents.consumer.policy",
        "agents.consumer.polcy",
      ]),
    );
    expect(found.find((p) => p.field === "agents.Producer")).toMatchObject({
      line: 4,
      fix: expect.stringContaining('rename it to "producer"'),
    });
    expect(found.find((p) => p.field === "agents.Producer.waitFor.consumer")!.message).toBe(
      "a condition is one of: started, ready, succeeded, exited",
    );
    expect(found.every((p) => !/Invalid key in record/.test(p.message))).toBe(true);
  });

  it("publishes a draft-07 schema", () => {
    expect(runFileJsonSchema().$schema).toBe("http://json-schema.org/draft-07/schema#");
  });
});

describe("JUnit XML", () => {
  it("has a testcase per agent with failures, errors and skips, escaped", () => {
    const base = {
      exitCode: 0,
      durationMs: 1500,
      startedAt: "",
      finishedAt: "",
      outputDir: "",
      outputFiles: [],
      outputSkipped: [],
      outputBytes: 0,
      stdout: "",
      stderr: "",
      ready: false,
      refusals: [],
      refusalsFile: "",
      denied: [],
      policy: null,
      resultFile: "",
    } satisfies Partial<AgentResult>;
    const xml = junitXml({
      name: "pair",
      source: "run.yaml",
      runId: "pair-1",
      status: "failed",
      durationMs: 2000,
      outputDir: "out",
      results: [
        { ...base, name: "ok", status: "succeeded", stdout: "<done> & \u0007" },
        { ...base, name: "bad", status: "failed", exitCode: 3, stderr: "starting\nError: cannot reach <queue>\n" },
        {
          ...base,
          name: "broken",
          status: "error",
          exitCode: null,
          error: 'policy "x" invalid',
          errorCode: "POLICY_INVALID",
        },
        { ...base, name: "later", status: "skipped", exitCode: null, error: "not started" },
      ],
    });
    expect(xml).toContain('<testsuite name="pair" tests="4" failures="1" errors="1" skipped="1" time="2.000">');
    expect(xml).toContain("<system-out>&lt;done&gt; &amp; </system-out>");
    // The body: why, and the agent's last lines.
    expect(xml).toContain(
      '<failure message="status failed, exit code 3" type="failed">status failed, exit code 3\nlast lines:\n  starting\n  Error: cannot reach &lt;queue&gt;</failure>',
    );
    expect(xml).toContain(
      '<error message="status error: policy &quot;x&quot; invalid" type="POLICY_INVALID">status error: policy &quot;x&quot; invalid</error>',
    );
    expect(xml).toContain('<skipped message="status skipped: not started"/>');
  });
});

describe("Kafka preflight", () => {
  const endpoints = ["localhost:9092"].map(parseEndpoint);
  it("passes when every advertised broker is allowed (127.0.0.1 and localhost are the same host)", async () => {
    const brokers = await kafkaPreflight({
      kafkaBrokers: "127.0.0.1:9092",
      endpoints,
      policySource: "p.yaml",
      describe: async () => [{ nodeId: 1, host: "localhost", port: 9092 }],
    });
    expect(brokers).toHaveLength(1);
  });

  it("refuses, naming each advertised broker outside the policy", async () => {
    const run = kafkaPreflight({
      kafkaBrokers: "localhost:9092",
      endpoints,
      policySource: "p.yaml",
      describe: async () => [
        { nodeId: 1, host: "localhost", port: 9092 },
        { nodeId: 2, host: "kafka-2.internal", port: 9092 },
      ],
    });
    await expect(run).rejects.toBeInstanceOf(KafkaPreflightError);
    await expect(run).rejects.toThrow(
      /advertises broker 2 at kafka-2\.internal:9092, which p\.yaml does not allow; kafkajs connects to every advertised broker[\s\S]*fix: add kafka-2\.internal:9092 to network\.allowedEndpoints/,
    );
  });

  it("refuses a bootstrap address the policy does not list, without contacting anything", async () => {
    let contacted = false;
    await expect(
      kafkaPreflight({
        kafkaBrokers: "localhost:9093",
        endpoints,
        policySource: "p.yaml",
        describe: async () => ((contacted = true), []),
      }),
    ).rejects.toThrow(/KAFKA_BROKERS names localhost:9093, which p\.yaml does not allow/);
    expect(contacted).toBe(false);
  });

  it("explains an unreachable cluster", async () => {
    await expect(
      kafkaPreflight({
        kafkaBrokers: "localhost:9092",
        endpoints,
        policySource: "p.yaml",
        describe: async () => Promise.reject(new Error("ECONNREFUSED")),
      }),
    ).rejects.toThrow(/cannot reach Kafka at localhost:9092 from this host/);
  });
});
