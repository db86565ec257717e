/**
 * Running agents on a real engine: results, env filtering, timeouts, cancel, output ownership,
 * the package layer cache, crash cleanup and the CLI.
 */
import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { definePolicy, runAgent, type AgentResult, type RunEvent } from "../../runner/index.js";
import { cleanup, dockerClient } from "../../runner/internal.js";
import { runsWithHostRules } from "../../runner/backends/docker/gate/host-netfilter.js";
import { WARM_GATE_PREFIX } from "../../runner/runner.js";
import { ensureImages } from "../../runner/images/images.js";
import { packagePath } from "../../runner/paths.js";
import { AGENTS, leftoverContainers, localRedisAdmin, tempDir } from "./helpers.js";

const CLI = packagePath("dist", "runner", "cli", "main.js");

describe("results and outputs", () => {
  it("collects exit code, stdout, stderr and output files, owned by the caller", async () => {
    const dir = await tempDir();
    const result = await runAgent({
      agent: join(AGENTS, "files.ts"),
      policy: definePolicy({ name: "files" }),
      outputDir: join(dir, "out"),
      workingDir: AGENTS,
    });
    expect(result).toMatchObject({
      name: "files",
      status: "failed",
      exitCode: 3,
      outputFiles: ["nested/data.json", "report.txt"],
    });
    expect(result.stdout).toContain("wrote 2 files as uid");
    expect(result.stderr).toBe("a line on stderr\n");
    expect(JSON.parse(await readFile(join(dir, "out", "nested", "data.json"), "utf8"))).toEqual({
      workspaceWritable: false,
    });
    expect(existsSync(join(AGENTS, "should-not-exist.txt"))).toBe(false);
    // The agent ran as an unprivileged uid, yet the files belong to whoever ran airlock.
    const report = await readFile(join(dir, "out", "report.txt"), "utf8");
    if (process.getuid?.() === 0) expect(report).toMatch(/^uid=10001 /);
    for (const f of ["report.txt", "nested", "nested/data.json"]) {
      const info = await stat(join(dir, "out", f));
      expect([f, info.uid]).toEqual([f, process.getuid?.()]);
    }
    const written = JSON.parse(await readFile(join(dir, "out.result.json"), "utf8"));
    expect(written).toMatchObject({ status: "failed", exitCode: 3, outputFiles: ["nested/data.json", "report.txt"] });
  });

  it("passes only the variables the policy allows", async () => {
    const dir = await tempDir();
    process.env.IT_ALLOWED = "from-host";
    process.env.IT_SECRET = "must-not-leak";
    try {
      const result = await runAgent({
        agent: join(AGENTS, "probe.ts"),
        policy: definePolicy({
          name: "env",
          env: { allow: ["IT_ALLOWED", "GIVEN"], set: { FIXED: "fixed", PROBES: "[]" } },
        }),
        outputDir: join(dir, "out"),
        env: { GIVEN: "given-to-runAgent" },
        workingDir: AGENTS,
      });
      expect(result.status).toBe("succeeded");
      const env = (result.returnValue as { env: Record<string, string> }).env;
      expect(env).toMatchObject({
        IT_ALLOWED: "from-host",
        GIVEN: "given-to-runAgent",
        FIXED: "fixed",
        AIRLOCK_AGENT_NAME: "probe",
      });
      expect(Object.values(env)).not.toContain("must-not-leak");
      expect(Object.keys(env)).not.toContain("IT_SECRET");
    } finally {
      delete process.env.IT_ALLOWED;
      delete process.env.IT_SECRET;
    }
  });
});

describe("stopping agents", () => {
  it("times out: SIGTERM, then SIGKILL after the grace; partial output kept; no container left", async () => {
    const dir = await tempDir();
    const started = Date.now();
    const result = await runAgent({
      agent: join(AGENTS, "slow.ts"),
      policy: definePolicy({ name: "slow", timeoutSeconds: 2 }),
      outputDir: join(dir, "out"),
      workingDir: AGENTS,
      stopGraceMs: 1500,
    });
    const elapsed = Date.now() - started;
    expect(result.status).toBe("timed_out");
    expect(result.exitCode).toBe(137);
    expect(result.stdout).toContain("got SIGTERM, ignoring it");
    expect(result.outputFiles).toEqual(["partial.txt"]);
    expect(await readFile(join(dir, "out", "partial.txt"), "utf8")).toBe("written before the timeout\n");
    expect(elapsed).toBeGreaterThanOrEqual(3500);
    expect(elapsed).toBeLessThan(15_000);
    expect(await leftoverContainers()).toEqual([]);
  });

  it("cancel: the agent hears ctx.signal, flushes, and exits before SIGKILL", async () => {
    const dir = await tempDir();
    const controller = new AbortController();
    const events: RunEvent[] = [];
    const result = await runAgent({
      agent: join(AGENTS, "graceful.ts"),
      policy: definePolicy({ name: "graceful", timeoutSeconds: 60 }),
      outputDir: join(dir, "out"),
      workingDir: AGENTS,
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === "ready") controller.abort();
      },
    });
    expect(result).toMatchObject({
      status: "cancelled",
      exitCode: 0,
      ready: true,
      returnValue: { stoppedCleanly: true },
      outputFiles: ["flushed.txt"],
    });
    expect(events.map((e) => e.type)).toContain("ready");
    expect(await leftoverContainers()).toEqual([]);
  });

  it("a stop that comes while the agent is still starting its consumers ends them all at once: it returns by itself, before the SIGKILL", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const result = await runAgent({
      agent: join(AGENTS, "stopped-while-starting.ts"),
      policy: definePolicy({
        name: "stopped-early",
        network: { allowedEndpoints: ["localhost:5672", "localhost:9092", "localhost:4222", "localhost:1883"] },
        bus: {
          requireRights: true,
          rabbitmq: { queues: { consume: ["stop-{run}"] } },
          kafka: { topics: { consume: ["stop-{run}"], create: true }, groups: ["stop-{run}"] },
          nats: { subscribe: ["inbox.{run}.{agent}.*"] },
          mqtt: { subscribe: ["a2a/{run}/tasks/{agent}/*"] },
        },
        timeoutSeconds: 120,
      }),
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
      signal: controller.signal,
      stopGraceMs: 30_000,
      onEvent: (e) => e.type === "ready" && controller.abort(),
    });
    expect(result, result.stderr).toMatchObject({ status: "cancelled", exitCode: 0 });
    const took = result.returnValue as Record<string, number>;
    expect(Object.keys(took).sort()).toEqual([
      "after inbox",
      "after stopped",
      "after stream",
      "after tasks",
      "after workQueue",
      "during inbox",
      "during stopped",
      "during stream",
      "during tasks",
      "during workQueue",
    ]);
    // Started after the stop, nothing even connects; started before it, each ends once it has connected.
    for (const [name, ms] of Object.entries(took))
      expect(ms, name).toBeLessThan(name.startsWith("after") ? 1000 : 15_000);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe("packages", () => {
  it("installs a policy's packages into a cached layer: the second run builds nothing", async () => {
    const policy = definePolicy({ name: "pkg", packages: ["left-pad@1.3.0"] });
    const first = await runAgent({
      agent: join(AGENTS, "uses-package.ts"),
      policy,
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
    });
    expect(first.status, first.error ?? first.stderr).toBe("succeeded");
    expect(first.stdout).toBe("00042\n");
    const builds: string[] = [];
    const second = await runAgent({
      agent: join(AGENTS, "uses-package.ts"),
      policy,
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
      onEvent: (e) => e.type === "build" && builds.push(e.line),
    });
    expect(second.status).toBe("succeeded");
    expect(second.image).toBe(first.image);
    expect(builds).toEqual([]);
  });
});

/** A runner in its own process that starts the slow agent with `options`, killed with SIGKILL once the agent is busy. */
async function killedRunner(options: string): Promise<void> {
  const dir = await tempDir();
  const script = join(dir, "runner.mjs");
  await writeFile(
    script,
    `import { runAgent, definePolicy } from ${JSON.stringify(packagePath("dist", "runner", "index.js"))};
     await runAgent({ agent: ${JSON.stringify(join(AGENTS, "slow.ts"))}, outputDir: ${JSON.stringify(join(dir, "out"))}, ${options},
       onEvent: (e) => { if (e.type === "output") console.log(e.line); } });`,
  );
  const child = execa("node", [script], { cwd: packagePath(), reject: false, buffer: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the orphan agent never started")), 60_000);
    child.stdout!.on("data", (d: Buffer) => d.toString().includes("now busy") && (clearTimeout(timer), resolve()));
  });
  child.kill("SIGKILL");
  await child;
}

describe("crash cleanup", () => {
  it("removes what a runner killed with SIGKILL left behind", async () => {
    await killedRunner(
      `name: "orphan", policy: definePolicy({ name: "orphan", timeoutSeconds: 600, network: { allowedEndpoints: ["localhost:6379"] } }), workingDir: ${JSON.stringify(AGENTS)}`,
    );
    const left = await leftoverContainers();
    expect(left, JSON.stringify(left)).toHaveLength(1); // the agent (it gates itself)
    const runId = left[0]!.replace(/^\/?airlock-/, "");
    // As root, localhost:6379 went through a host DNAT rule tagged with the run: the dead runner left it.
    const kernel = process.getuid?.() === 0;
    if (kernel) expect([...(await runsWithHostRules()).keys()]).toContain(runId);
    const report = await cleanup(dockerClient());
    // The agent, and the gate its runner kept ready for the next run.
    expect(report.containersRemoved.filter((n) => !n.startsWith(WARM_GATE_PREFIX))).toEqual(
      left.map((n) => n.replace(/^\//, "")),
    );
    expect(await leftoverContainers()).toEqual([]);
    if (kernel) expect([...(await runsWithHostRules()).keys()]).not.toContain(runId);
  });

  it("a runner killed with SIGKILL leaves a broker identity that expires with its run and is swept by cleanup", async () => {
    await killedRunner(
      `name: "orphan-bus", policy: definePolicy({ name: "orphan-bus", timeoutSeconds: 1, network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: {} } }), stopGraceMs: 100`,
    );
    const admin = await localRedisAdmin();
    const mine = async () =>
      ((await admin.call("ACL", "USERS")) as string[]).filter((u) => u.startsWith("airlock-orphan-bus-"));
    const left = await mine();
    expect(left).toHaveLength(1);
    // Its name says when it expires: the run's timeout and grace, plus a margin.
    const expires = Number(left[0]!.split("-").pop()) * 1000;
    expect(expires - Date.now()).toBeLessThan(35_000);
    const before = await execa("node", [CLI, "cleanup"], { reject: false });
    expect(before.exitCode).toBe(0);
    expect(await mine()).toEqual(left); // not expired yet: a run that is still starting keeps its identity
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now() + 500)));
    const after = await execa("node", [CLI, "cleanup"], { reject: false });
    expect(after.stdout, after.stderr).toMatch(/removed \d+ broker identit(y|ies) on the Redis at 127\.0\.0\.1:6379: /);
    expect(after.stdout).toContain(left[0]);
    expect(await mine()).toEqual([]);
    admin.disconnect();
  }, 120_000);
});

describe("CLI", () => {
  it("airlock run streams prefixed output, summarises, and exits with the agent's code", async () => {
    const dir = await tempDir();
    const policy = join(dir, "files.yaml");
    await writeFile(policy, "name: files\n");
    const run = await execa(
      "node",
      [CLI, "run", join(AGENTS, "files.ts"), "--policy", policy, "--output", join(dir, "out"), "--workdir", AGENTS],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(run.exitCode).toBe(3);
    expect(run.stdout).toMatch(/^files \| wrote 2 files as uid/m);
    expect(run.stdout).toMatch(/^files \| a line on stderr$/m);
    expect(run.stdout).toMatch(
      /✖ files failed \(exit 3\) in [\d.]+m?s · 2 output files in .* · result .*out\.result\.json$/m,
    );
  });

  it("airlock run exits 124 on timeout and --json prints the result", async () => {
    const dir = await tempDir();
    const policy = join(dir, "slow.yaml");
    await writeFile(policy, "name: slow\ntimeoutSeconds: 1\n");
    const run = await execa(
      "node",
      [
        CLI,
        "run",
        join(AGENTS, "slow.ts"),
        "--policy",
        policy,
        "--output",
        join(dir, "out"),
        "--workdir",
        AGENTS,
        "--json",
      ],
      { reject: false },
    );
    expect(run.exitCode).toBe(124);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: "timed_out", outputFiles: ["partial.txt"] });
  });

  it("airlock run reports a bad policy with file, line and fix, and exits 125 without starting anything", async () => {
    const dir = await tempDir();
    const policy = join(dir, "bad.yaml");
    await writeFile(policy, "name: bad\nnetwork:\n  allowed_endpoints: [localhost:6379]\n");
    const run = await execa(
      "node",
      [CLI, "run", join(AGENTS, "files.ts"), "--policy", policy, "--output", join(dir, "out")],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(run.exitCode).toBe(125);
    expect(run.stdout).toContain(`${policy}:3:3: network.allowed_endpoints: unknown key "allowed_endpoints"`);
    expect(run.stdout).toContain("did you mean network.allowedEndpoints?");
  });

  it("airlock validate, schema --check and doctor", async () => {
    const validate = await execa("node", [CLI, "validate", packagePath("policies", "hello.yaml")], {
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(validate.exitCode).toBe(0);
    const check = await execa("node", [CLI, "schema", "--check", packagePath("policies", "policy.schema.json")], {
      reject: false,
    });
    expect(check.exitCode).toBe(0);
    const doctor = await execa("node", [CLI, "doctor", "--policy", packagePath("policies", "hello.yaml")], {
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(doctor.stdout).toMatch(/✔ docker engine: version/);
    expect(doctor.stdout).toMatch(/✔ .*hello\.yaml → localhost:6379: reachable from this host/);
    expect(doctor.exitCode).toBe(0);
  });
});

describe("examples/hello", () => {
  it("talks to the local Redis through the gate and is refused on an unlisted port", async () => {
    const dir = await tempDir();
    const result = await runAgent({
      agent: packagePath("examples", "hello", "agent.ts"),
      policy: packagePath("policies", "hello.yaml"),
      outputDir: join(dir, "hello"),
      workingDir: packagePath(),
    });
    expect(result.status, result.error ?? result.stderr).toBe("succeeded");
    const report = JSON.parse(await readFile(join(dir, "hello", "hello.json"), "utf8"));
    expect(report).toEqual({
      redis: { pong: "PONG", echoed: "hello from inside the airlock" },
      unlistedPort: "ECONNREFUSED",
    });
  });
});

describe("bad input on a real engine", () => {
  it("refuses a working directory the sandbox user cannot read, before starting anything", async () => {
    const { mkdtemp } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const privateDir = await mkdtemp(join(tmpdir(), "airlock-private-"));
    const result = await runAgent({
      agent: join(AGENTS, "files.ts"),
      policy: definePolicy({ name: "private" }),
      outputDir: join(await tempDir(), "out"),
      workingDir: privateDir,
    });
    if (process.getuid?.() === 0) {
      expect(result).toMatchObject({ status: "error", errorCode: "RUN_OPTIONS" });
      expect(result.error).toContain("is not readable by the sandbox user (uid 10001; mode 700)");
    } else expect(result.status).toBe("failed");
  });
});

describe("exit codes", () => {
  it("a stack trace names the agent's own file and line (source maps), not the bundle", async () => {
    const result = await runAgent({
      agent: join(AGENTS, "throws.ts"),
      policy: definePolicy({ name: "throws" }),
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
    });
    expect(result.status).toBe("failed");
    expect(result.stderr).toMatch(/\/opt\/agent\/run\/throws\.ts:5:\d+/);
    expect(result.stderr).not.toMatch(/agent\.mjs:\d+/);
  });

  it("a defineAgent agent that sets process.exitCode exits with it (and its return value is kept)", async () => {
    const result = await runAgent({
      agent: join(AGENTS, "exit-code.ts"),
      policy: definePolicy({ name: "exit-code" }),
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
    });
    expect(result).toMatchObject({ status: "failed", exitCode: 3, returnValue: { done: true } });
  });
});

describe("reruns", () => {
  it("a second run into the same output folder replaces the files it writes again, keeps everything else, and lists only its own", async () => {
    const dir = await tempDir();
    const out = join(dir, "out");
    const policy = definePolicy({ name: "files" });
    await runAgent({ agent: join(AGENTS, "files.ts"), policy, outputDir: out, workingDir: AGENTS });
    await writeFile(join(out, "mine.txt"), "the user's own file\n");
    const second = await runAgent({ agent: join(AGENTS, "files.ts"), policy, outputDir: out, workingDir: AGENTS });
    expect(second.status, second.stderr).toBe("failed"); // files.ts exits 3 after writing
    expect(second.stderr).not.toContain("EACCES");
    // The result says what this run wrote; the user's file stays, untouched and unlisted.
    expect(second.outputFiles).toEqual(["nested/data.json", "report.txt"]);
    expect(await readFile(join(out, "mine.txt"), "utf8")).toBe("the user's own file\n");
    // A run that fails before it starts lists nothing, whatever the folder holds.
    const early = await runAgent({ agent: join(AGENTS, "nope.ts"), policy, outputDir: out, workingDir: AGENTS });
    expect(early).toMatchObject({ status: "error", outputFiles: [], outputBytes: 0 });
    expect((await stat(join(out, "mine.txt"))).uid).toBe(process.getuid?.());
  });
});

describe("gate pool (a command in another image is gated by a gate container)", () => {
  it("a gate kept ready that has gone away (idle exit) is replaced, and the run succeeds", async () => {
    const policy = definePolicy({ name: "pooled", network: { allowedEndpoints: ["localhost:6379"] } });
    const { base } = await ensureImages(dockerClient());
    const run = async () =>
      runAgent({
        command: ["sh", "-c", "exit 3"],
        image: base,
        policy,
        outputDir: join(await tempDir(), "out"),
        workingDir: AGENTS,
      });
    const first = await run();
    expect(first.exitCode).toBe(3);
    const docker = dockerClient();
    // Wait for the gate the first run started for the next one, then make it go away as an idle gate would.
    let warm: string[] = [];
    for (let i = 0; i < 50 && warm.length === 0; i++) {
      warm = (await docker.listContainers({ filters: { name: ["airlock-warm-"] } })).map((c) => c.Id);
      if (!warm.length) await new Promise((r) => setTimeout(r, 100));
    }
    expect(warm.length).toBeGreaterThan(0);
    await Promise.all(
      warm.map((id) =>
        docker
          .getContainer(id)
          .kill()
          .catch(() => {}),
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    const second = await run();
    expect(second.status, second.error).toBe("failed");
    expect(second.exitCode).toBe(3);
  });
});

describe("airlock run with a command", () => {
  it("runs a command after -- (in the agent image, or behind a gate container in another image) with the same exit codes and denied report", async () => {
    const dir = await tempDir();
    const policy = join(dir, "p.yaml");
    await writeFile(policy, "name: cmd\nnetwork:\n  allowedEndpoints: [localhost:6379]\n");
    const own = await execa(
      "node",
      [CLI, "run", "--policy", policy, "--output", join(dir, "a"), "--", "sh", "-c", "echo from-command; exit 4"],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(own.exitCode, own.stderr).toBe(4);
    expect(own.stdout).toContain("from-command");
    const { base } = await ensureImages(dockerClient());
    const foreign = await execa(
      "node",
      [
        CLI,
        "run",
        "--policy",
        policy,
        "--output",
        join(dir, "b"),
        "--image",
        base,
        "--json",
        "--",
        "node",
        "-e",
        "require('net').connect(6380,'127.0.0.1').on('error',()=>process.exit(5))",
      ],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(foreign.exitCode, foreign.stderr).toBe(5);
    const result = JSON.parse(foreign.stdout) as AgentResult;
    expect(result.denied.map((d) => d.destination)).toContain("127.0.0.1:6380");
    const both = await execa(
      "node",
      [CLI, "run", join(AGENTS, "files.ts"), "--policy", policy, "--output", join(dir, "c"), "--", "sh"],
      { reject: false },
    );
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain("not both");
  });
});

describe("images airlock did not build, from a script and from a run file", () => {
  it("runAgent({ command, image }) in a standalone script resolves, and airlock up with such an agent exits 0", async () => {
    const { base } = await ensureImages(dockerClient());
    const dir = await tempDir();
    const script = join(dir, "script.mjs");
    await writeFile(
      script,
      `import { runAgent } from ${JSON.stringify(packagePath("dist", "runner", "index.js"))};
const r = await runAgent({ command: ["node", "-e", "console.log('from a foreign image')"], image: ${JSON.stringify(base)}, policy: { name: "s", network: { allowedEndpoints: ["localhost:6379"] } }, outputDir: ${JSON.stringify(join(dir, "out"))} });
console.log("STATUS " + r.status + " " + r.stdout.trim());\n`,
    );
    const standalone = await execa("node", [script], { reject: false });
    expect(standalone.exitCode, standalone.stderr).toBe(0);
    expect(standalone.stdout).toContain("STATUS succeeded from a foreign image");
    await writeFile(join(dir, "p.yaml"), "name: p\nnetwork:\n  allowedEndpoints: [localhost:6379]\n");
    await writeFile(
      join(dir, "run.yaml"),
      `name: foreign\nagents:\n  a:\n    command: [node, -e, "console.log('agent a')"]\n    image: ${base}\n    policy: p.yaml\n  b:\n    command: [node, -e, "console.log('agent b')"]\n    image: ${base}\n    policy: p.yaml\n    waitFor: { a: succeeded }\n`,
    );
    const up = await execa("node", [CLI, "up", join(dir, "run.yaml"), "--output", join(dir, "up")], {
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(up.exitCode, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain("all 2 agents succeeded");
  });
});
