/**
 * Group runs: ordering by readiness, skipping what can no longer start, failures that do not hang the
 * rest, and bus errors that say whether the policy is the problem.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { definePolicy, runAgent, runAgents } from "../../runner/index.js";
import { packagePath } from "../../runner/paths.js";
import { AGENTS, leftoverContainers, tempDir } from "./helpers.js";

async function writeRun(dir: string, yaml: string): Promise<string> {
  const file = join(dir, "run.yaml");
  await writeFile(join(dir, "none.yaml"), "name: none\ntimeoutSeconds: 20\n");
  await writeFile(file, yaml.replaceAll("AGENTS", AGENTS));
  return file;
}

describe("runAgents", () => {
  it("skips an agent whose dependency failed before it was ready, and reports the group as failed", async () => {
    const dir = await tempDir();
    const file = await writeRun(
      dir,
      `name: skip
agents:
  first:
    agent: AGENTS/fails-fast.ts
    policy: none.yaml
  second:
    agent: AGENTS/files.ts
    policy: none.yaml
    waitFor: { first: ready }
`,
    );
    const group = await runAgents(file, { outputDir: join(dir, "out") });
    expect(group.status).toBe("failed");
    expect(
      group.results.map((r) => [r.name, r.status, r.exitCode]),
      group.results.map((r) => `${r.name}: ${r.errorCode ?? ""} ${r.error ?? ""}`).join("\n"),
    ).toEqual([
      ["first", "failed", 2],
      ["second", "skipped", null],
    ]);
    expect(group.results[1]!.error).toBe("not started: first failed before it was ready");
  });

  it("one agent timing out does not hold the others; each keeps its own timeout", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "short.yaml"), "name: short\ntimeoutSeconds: 2\n");
    const file = await writeRun(
      dir,
      `name: mixed
agents:
  stuck:
    agent: AGENTS/slow.ts
    policy: short.yaml
  quick:
    agent: AGENTS/files.ts
    policy: none.yaml
  after-quick:
    agent: AGENTS/fails-fast.ts
    policy: none.yaml
    waitFor: { quick: exited }
`,
    );
    const started = Date.now();
    const group = await runAgents(file, { outputDir: join(dir, "out") });
    expect(group.results.map((r) => [r.name, r.status])).toEqual([
      ["stuck", "timed_out"],
      ["quick", "failed"],
      ["after-quick", "failed"],
    ]);
    expect(group.results[1]!.durationMs).toBeLessThan(group.results[0]!.durationMs);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await leftoverContainers()).toEqual([]);
  });

  it("airlock up exits 1 when an agent failed and marks it in JUnit XML", async () => {
    const dir = await tempDir();
    const file = await writeRun(
      dir,
      `name: junit\nagents:\n  bad:\n    agent: AGENTS/fails-fast.ts\n    policy: none.yaml\n`,
    );
    const run = await execa(
      "node",
      [
        packagePath("dist", "runner", "cli", "main.js"),
        "up",
        file,
        "--output",
        join(dir, "out"),
        "--junit",
        join(dir, "j.xml"),
      ],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(/✖ junit: 1 of 1 agents did not succeed/);
    // Under the table: each agent that failed, and why.
    expect(run.stdout).toMatch(/^ {2}bad: failed \(exit 2\); last line: giving up at once$/m);
    const xml = await readFile(join(dir, "j.xml"), "utf8");
    expect(xml).toContain(
      '<failure message="status failed, exit code 2" type="failed">status failed, exit code 2\nlast lines:\n  giving up at once</failure>',
    );
    expect(xml).toContain("<system-err>giving up at once\n</system-err>");
  });

  it("stops an agent that serves others once they have all ended and one failed, instead of leaving it to wait out its timeout", async () => {
    const dir = await tempDir();
    const file = await writeRun(
      dir,
      `name: served\nagents:\n  worker:\n    agent: AGENTS/graceful.ts\n    policy: none.yaml\n  publisher:\n    agent: AGENTS/fails-fast.ts\n    policy: none.yaml\n    waitFor: { worker: ready }\n`,
    );
    const started = Date.now();
    const group = await runAgents(file, { outputDir: join(dir, "out") });
    const worker = group.results.find((r) => r.name === "worker")!;
    expect(group.results.find((r) => r.name === "publisher")).toMatchObject({ status: "failed", exitCode: 2 });
    // Told (its ctx.signal), so it flushed and ended well before its 20 s timeout.
    expect(worker).toMatchObject({
      status: "cancelled",
      returnValue: { stoppedCleanly: true },
      error: expect.stringContaining("publisher failed"),
    });
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("reports a bad run file with its line before starting anything", async () => {
    const dir = await tempDir();
    const file = await writeRun(
      dir,
      `name: bad\nagents:\n  a:\n    agent: AGENTS/files.ts\n    policy: none.yaml\n    after: { b: ready }\n`,
    );
    await expect(runAgents(file)).rejects.toThrow(
      /run\.yaml:6:5: agents\.a\.after: unknown key "after"\n\s+fix: did you mean waitFor\?/,
    );
  });
});

describe("bus connection errors", () => {
  async function tryRedis(url: string, allowed: string) {
    const result = await runAgent({
      agent: join(AGENTS, "bus-error.ts"),
      policy: definePolicy({ name: "bus", network: { allowedEndpoints: [allowed] }, env: { set: { REDIS_URL: url } } }),
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
    });
    expect(result.status, result.stderr).toBe("succeeded");
    return result.returnValue as { name: string; message: string };
  }

  it("names the endpoint and says the policy does not allow it", async () => {
    const err = await tryRedis("redis://localhost:6380", "localhost:6379");
    expect(err.name).toBe("BusConnectionError");
    expect(err.message).toBe(
      "cannot reach redis at localhost:6380 (ECONNREFUSED): the policy does not allow it: add localhost:6380 to network.allowedEndpoints (allowed now: localhost:6379)",
    );
  });

  it("says when the policy allows it and the broker itself is not answering", async () => {
    const err = await tryRedis("redis://localhost:6391", "localhost:6391");
    expect(err.message).toMatch(
      /^cannot reach redis at localhost:6391 \(\w+\): the policy allows it, so the broker itself is not answering there/,
    );
  });
});
