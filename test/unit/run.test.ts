import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { createRunner, runAgent } from "../../runner/index.js";
import { agentEnvironment } from "../../runner/run/env.js";
import { LogCapture } from "../../runner/run/logs.js";
import { exitCodeFor } from "../../runner/cli/exit-codes.js";
import { definePolicy } from "../../runner/policy/index.js";
import { encodeControl } from "../../agent-runtime/protocol.js";

const policy = definePolicy({ name: "p", env: { allow: ["KEEP", "ABSENT"], set: { FIXED: "1" } } });

describe("agent environment", () => {
  it("passes only allowed and fixed variables, plus airlock's own", () => {
    const env = agentEnvironment(policy, {
      hostEnv: { KEEP: "k", SECRET: "s", PATH: "/usr/bin" },
      airlockVars: { AIRLOCK_RUN_ID: "r" },
    });
    expect(env).toEqual({ KEEP: "k", FIXED: "1", AIRLOCK_RUN_ID: "r" });
  });

  it("takes values from runAgent's env before the caller's environment", () => {
    expect(agentEnvironment(policy, { given: { KEEP: "given" }, hostEnv: { KEEP: "host" } }).KEEP).toBe("given");
  });

  it("refuses a variable given to runAgent that the policy does not allow", () => {
    expect(() => agentEnvironment(policy, { given: { SECRET: "x" }, hostEnv: {} })).toThrow(
      /was given SECRET in env, but <inline> does not allow it/,
    );
  });
});

describe("log capture", () => {
  it("splits lines across chunks, takes out control lines, and keeps only the newest bytes", () => {
    const lines: string[] = [];
    const controls: unknown[] = [];
    const cap = new LogCapture(
      "stdout",
      20,
      (_s, l) => lines.push(l),
      (c) => controls.push(c),
    );
    cap.push("hel");
    cap.push(`lo\n${encodeControl({ type: "ready" })}\nwor`);
    cap.push("ld\n0123456789\nabcdefghij\nlast");
    cap.end();
    expect(lines).toEqual(["hello", "world", "0123456789", "abcdefghij", "last"]);
    expect(controls).toEqual([{ type: "ready" }]);
    expect(cap.text()).toBe(`[airlock: 23 earlier bytes of stdout dropped]\nabcdefghij\nlast\n`);
  });

  it("cuts a line that never ends into bounded pieces", () => {
    const lines: string[] = [];
    const cap = new LogCapture(
      "stderr",
      1 << 20,
      (_s, l) => lines.push(l),
      () => {},
    );
    cap.push("x".repeat(200_000));
    cap.end();
    expect(lines.map((l) => l.length)).toEqual([65536, 65536, 65536, 3392]);
  });
});

describe("exit codes", () => {
  const r = (status: string, exitCode: number | null) => ({ status, exitCode }) as never;
  it("maps results to the CLI's exit code", () => {
    expect(exitCodeFor(r("succeeded", 0))).toBe(0);
    expect(exitCodeFor(r("failed", 3))).toBe(3);
    expect(exitCodeFor(r("timed_out", 143))).toBe(124);
    expect(exitCodeFor(r("error", null))).toBe(125);
    expect(exitCodeFor(r("oom", 137))).toBe(137);
  });
});

/** A Docker API that answers like an engine that is not running. */
const absentDocker = {
  version: () => Promise.reject(Object.assign(new Error("connect ENOENT /var/run/docker.sock"), { code: "ENOENT" })),
} as unknown as Docker;

describe("runAgent without a usable engine or input", () => {
  async function setup() {
    const dir = await mkdtemp(join(tmpdir(), "airlock-unit-"));
    await writeFile(join(dir, "agent.ts"), "console.log('hi');\n");
    await writeFile(join(dir, "policy.yaml"), "name: unit\n");
    return dir;
  }

  it("returns status error with a friendly message when Docker is missing, and writes result.json", async () => {
    const dir = await setup();
    const result = await runAgent({
      agent: join(dir, "agent.ts"),
      policy: join(dir, "policy.yaml"),
      outputDir: join(dir, "out"),
      runner: createRunner({ docker: absentDocker }),
    });
    expect(result.status).toBe("error");
    expect(result.errorCode).toBe("DOCKER_UNAVAILABLE");
    expect(result.error).toContain("does not exist (is Docker installed and running?)");
    expect(result.error).toContain("fix:");
    expect(JSON.parse(await readFile(join(dir, "out.result.json"), "utf8")).status).toBe("error");
  });

  it("reports a bad policy before touching Docker", async () => {
    const dir = await setup();
    await writeFile(join(dir, "policy.yaml"), "name: unit\ntimeout_seconds: 5\n");
    const result = await runAgent({
      agent: join(dir, "agent.ts"),
      policy: join(dir, "policy.yaml"),
      outputDir: join(dir, "out"),
      runner: createRunner({ docker: absentDocker }),
    });
    expect(result).toMatchObject({ status: "error", errorCode: "POLICY_INVALID" });
    expect(result.error).toContain("did you mean timeoutSeconds?");
  });

  it("reports an agent that does not compile, with its line", async () => {
    const dir = await setup();
    await writeFile(join(dir, "agent.ts"), "const x: number = ;\n");
    const result = await runAgent({
      agent: join(dir, "agent.ts"),
      policy: join(dir, "policy.yaml"),
      outputDir: join(dir, "out"),
      runner: createRunner({ docker: absentDocker }),
    });
    expect(result).toMatchObject({ status: "error", errorCode: "AGENT_SOURCE" });
    expect(result.error).toMatch(/agent\.ts:1:\d+: Unexpected ";"/);
  });

  it("reports an import of a package the policy does not list", async () => {
    const dir = await setup();
    await writeFile(join(dir, "agent.ts"), "import Redis from 'ioredis';\nnew Redis();\n");
    const result = await runAgent({
      agent: join(dir, "agent.ts"),
      policy: join(dir, "policy.yaml"),
      outputDir: join(dir, "out"),
      runner: createRunner({ docker: absentDocker }),
    });
    expect(result.error).toContain('imports "ioredis", which the policy');
    expect(result.error).toContain("add it to packages");
  });

  it("reports a missing agent file and an output path that is a file", async () => {
    const dir = await setup();
    const missing = await runAgent({
      agent: join(dir, "nope.ts"),
      policy: join(dir, "policy.yaml"),
      outputDir: join(dir, "out"),
      runner: createRunner({ docker: absentDocker }),
    });
    expect(missing.error).toContain("agent file not found");
    await writeFile(join(dir, "file-out"), "precious");
    const fileOut = await runAgent({
      agent: join(dir, "agent.ts"),
      policy: join(dir, "policy.yaml"),
      outputDir: join(dir, "file-out"),
      runner: createRunner({ docker: absentDocker }),
    });
    expect(fileOut).toMatchObject({ status: "error", errorCode: "RUN_OPTIONS" });
    expect(fileOut.error).toContain("exists and is a file");
    expect(await readFile(join(dir, "file-out"), "utf8")).toBe("precious");
  });
});
