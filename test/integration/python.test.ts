/**
 * Python agents on a real engine and real brokers: the runtime's context, stop, readiness and result;
 * plain scripts streaming line by line; pip packages installed at build time (list and
 * requirements.txt, cached by their hash); the errors a Python user meets (syntax, missing module,
 * a package pip cannot install); the bus helpers under bus rights; and the CLI.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { definePolicy, runAgent, runAgents, type RunEvent } from "../../runner/index.js";
import { packagePath } from "../../runner/paths.js";
import { AGENTS, leftoverContainers, tempDir } from "./helpers.js";

const PY = join(AGENTS, "python");
const CLI = packagePath("dist", "runner", "cli", "main.js");

describe("the Python agent runtime", () => {
  it("gives the agent its context: env from the policy only, output helpers confined to /output, log, ready, a saved return value", async () => {
    const dir = await tempDir();
    process.env.HOST_ONLY = "must-not-leak";
    const events: RunEvent[] = [];
    try {
      const result = await runAgent({
        agent: join(PY, "context.py"),
        policy: definePolicy({ name: "py-context", env: { set: { GREETING: "hi" } } }),
        outputDir: join(dir, "out"),
        onEvent: (e) => events.push(e),
      });
      expect(result.status, `${result.error ?? ""} ${result.stderr}`).toBe("succeeded");
      expect(result.image).toMatch(/^airlock\/python-agent:/);
      expect(result.returnValue).toEqual({
        name: "context",
        allowed: "hi",
        host_home_leaked: false,
        escaped: false,
        module_level_same: true,
      });
      expect(result.ready).toBe(true);
      expect(events.some((e) => e.type === "ready")).toBe(true);
      expect(result.stdout).toBe("info line\n");
      expect(result.stderr).toBe("warning: a warning\n");
      expect(result.outputFiles).toEqual(["a/b.txt", "data.json", "lines.txt"]);
      expect(await readFile(join(dir, "out", "lines.txt"), "utf8")).toBe("one\ntwo\n");
      expect(JSON.parse(await readFile(join(dir, "out", "data.json"), "utf8"))).toEqual({ n: 1 });
    } finally {
      delete process.env.HOST_ONLY;
    }
  });

  it("awaits an async agent function", async () => {
    const result = await runAgent({
      agent: join(PY, "async_agent.py"),
      policy: definePolicy({ name: "py-async" }),
      outputDir: join(await tempDir(), "out"),
    });
    expect(result.status, `${result.error ?? ""} ${result.stderr}`).toBe("succeeded");
    expect(result.returnValue).toEqual({ async: true });
  });

  it("stops on the runner's SIGTERM: the stop flag is set, on_stop callbacks and finally blocks run before the grace ends", async () => {
    const dir = await tempDir();
    const result = await runAgent({
      agent: join(PY, "stops.py"),
      policy: definePolicy({ name: "py-stops", timeoutSeconds: 2 }),
      outputDir: join(dir, "out"),
      stopGraceMs: 5000,
    });
    const seen = JSON.stringify({
      status: result.status,
      exitCode: result.exitCode,
      outputFiles: result.outputFiles,
      warnings: result.warnings,
      error: result.error,
      startup: result.startup,
      stderr: result.stderr,
      ms: result.durationMs,
    });
    expect(result.status, seen).toBe("timed_out");
    expect(result.ready, seen).toBe(true);
    expect(result.outputFiles, seen).toEqual(["finally.txt", "on-stop.txt"]);
    expect(await readFile(join(dir, "out", "on-stop.txt"), "utf8")).toBe("flushed\n");
    expect(await readFile(join(dir, "out", "finally.txt"), "utf8")).toBe("stopping=True\n");
    // It ended on SIGTERM, well before SIGKILL would have come.
    expect(result.durationMs).toBeLessThan(2000 + 4000);
  });

  it("reports an exception with the traceback from the agent's own frames", async () => {
    const result = await runAgent({
      agent: join(PY, "fails.py"),
      policy: definePolicy({ name: "py-fails" }),
      outputDir: join(await tempDir(), "out"),
    });
    expect(result).toMatchObject({ status: "failed", exitCode: 1 });
    expect(result.stderr).toMatch(
      /^Traceback \(most recent call last\):\n {2}File "\/opt\/agent\/run\/fails\.py", line \d+, in main/,
    );
    expect(result.stderr).toContain("RuntimeError: the agent gave up");
    expect(result.stderr).not.toContain("_bootstrap.py");
  });
});

describe("plain Python scripts, in any language's terms", () => {
  it("stream their lines as printed, and can say they are ready with the documented control line", async () => {
    const seen: { line: string; at: number }[] = [];
    let readyAt = 0;
    const result = await runAgent({
      agent: join(PY, "plain-ready.py"),
      policy: definePolicy({ name: "py-plain" }),
      outputDir: join(await tempDir(), "out"),
      onEvent: (e) => {
        if (e.type === "output" && e.stream === "stdout") seen.push({ line: e.line, at: Date.now() });
        if (e.type === "ready") readyAt = Date.now();
      },
    });
    expect(result.status, `${result.error ?? ""} ${result.stderr}`).toBe("succeeded");
    expect(result.ready).toBe(true);
    expect(result.stdout).toBe("tick 0\ntick 1\ntick 2\ntick 3\n");
    expect(result.stderr).toBe("done\n");
    // Printed 300 ms apart, and received that way: not in one burst at the exit.
    expect(seen.map((s) => s.line)).toEqual(["tick 0", "tick 1", "tick 2", "tick 3"]);
    expect(seen[3]!.at - seen[0]!.at).toBeGreaterThan(600);
    expect(readyAt).toBeGreaterThan(0);
    expect(readyAt).toBeLessThanOrEqual(seen[0]!.at);
  });

  it("run as a command in the Python image (runtime: python), unbuffered", async () => {
    const seen: number[] = [];
    const result = await runAgent({
      command: ["python3", "-c", "import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.3)"],
      runtime: "python",
      policy: definePolicy({ name: "py-command" }),
      outputDir: join(await tempDir(), "out"),
      onEvent: (e) => void (e.type === "output" && seen.push(Date.now())),
    });
    expect(result.status, `${result.error ?? ""} ${result.stderr}`).toBe("succeeded");
    expect(result.image).toMatch(/^airlock\/python-agent:/);
    expect(result.stdout).toBe("0\n1\n2\n");
    expect(seen[2]! - seen[0]!).toBeGreaterThan(400);
  });
});

describe("pip packages, installed when the image is built", () => {
  it("installs a policy's list into a cached layer keyed by the packages, and reuses it", async () => {
    const policy = definePolicy({ name: "py-six", packages: { pip: ["six==1.16.0"] } });
    const builds: string[] = [];
    const first = await runAgent({
      agent: join(PY, "uses_six.py"),
      policy,
      outputDir: join(await tempDir(), "out"),
      onEvent: (e) => void (e.type === "build" && builds.push(e.line)),
    });
    expect(first.status, `${first.error}\n${first.stderr}`).toBe("succeeded");
    expect(first.returnValue).toEqual({ six: "1.16.0" });
    expect(first.image).toMatch(/^airlock\/python-packages:/);
    const again: string[] = [];
    const second = await runAgent({
      agent: join(PY, "uses_six.py"),
      policy,
      outputDir: join(await tempDir(), "out"),
      onEvent: (e) => void (e.type === "build" && again.push(e.line)),
    });
    expect(second.image).toBe(first.image);
    expect(again).toEqual([]);
  });

  it("takes a requirements.txt named by the policy, relative to the policy file", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "requirements.txt"), "# the agent's packages\nsix==1.16.0  # pinned\n");
    await writeFile(join(dir, "policy.yaml"), "name: py-reqs\npackages:\n  pip: requirements.txt\n");
    const result = await runAgent({
      agent: join(PY, "uses_six.py"),
      policy: join(dir, "policy.yaml"),
      outputDir: join(dir, "out"),
    });
    expect(result.status, `${result.error}\n${result.stderr}`).toBe("succeeded");
    expect(result.returnValue).toEqual({ six: "1.16.0" });
  });

  it("reports a package pip cannot find with pip's own words, trimmed, and the fix", async () => {
    const result = await runAgent({
      agent: join(PY, "uses_six.py"),
      policy: definePolicy({ name: "py-nosuch", packages: { pip: ["six==99.99.99"] } }),
      outputDir: join(await tempDir(), "out"),
    });
    expect(result.status).toBe("error");
    expect(result.error).toMatch(/pip could not install the packages in packages\.pip of <inline>/);
    expect(result.error).toMatch(/No matching distribution found for six==99\.99\.99/);
    expect(result.error).toMatch(/fix: check the names and versions \(pip index versions NAME/);
    expect(result.error!.split("\n").length).toBeLessThan(8);
  });

  it("names a module the image does not have, with the policy line that installs it", async () => {
    const result = await runAgent({
      agent: join(PY, "uses_six.py"),
      policy: definePolicy({ name: "py-missing" }),
      outputDir: join(await tempDir(), "out"),
    });
    expect(result).toMatchObject({ status: "failed", exitCode: 1 });
    expect(result.error).toBe(
      'the agent imports "six", which is not installed in its image: add six==<version> to packages.pip in <inline>',
    );
  });
});

describe("a Python agent that does not compile", () => {
  it("is reported before any container starts, with file, line and column, also in a module it imports", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "agent.py"), "import helper\nprint(helper.X)\n");
    await writeFile(join(dir, "helper.py"), "X = (1,\n");
    // A broken file the agent never imports does not stop it.
    await writeFile(join(dir, "scratch.py"), "def broken(:\n");
    const phases: string[] = [];
    const result = await runAgent({
      agent: join(dir, "agent.py"),
      policy: definePolicy({ name: "py-syntax" }),
      outputDir: join(dir, "out"),
      onEvent: (e) => void (e.type === "phase" && phases.push(e.phase)),
    });
    expect(result.status).toBe("error");
    expect(result.error).toMatch(/helper\.py:1:5: SyntaxError: '\(' was never closed: X = \(1,/);
    expect(phases).not.toContain("starting");
    await writeFile(join(dir, "helper.py"), "X = 42\n");
    const fixed = await runAgent({
      agent: join(dir, "agent.py"),
      policy: definePolicy({ name: "py-syntax" }),
      outputDir: join(dir, "out2"),
    });
    expect(fixed.status, fixed.stderr).toBe("succeeded");
    expect(fixed.stdout).toBe("42\n");
  });
});

describe("the Python bus helpers, under bus rights", () => {
  it("pub/sub, request/reply, work queue and streaming work between two Python agents, and a channel outside the rights is refused", async () => {
    const group = await runAgents(join(PY, "bus-helpers.run.yaml"), { outputDir: await tempDir() });
    const [consumer, producer] = group.results;
    for (const r of group.results)
      expect(`${r.name}: ${r.status}`, `${r.error ?? ""}\n${r.stderr}`).toBe(`${r.name}: succeeded`);
    expect(consumer!.returnValue).toEqual({ received: [{ i: 0 }, { i: 1 }, { i: 2 }], served: 2, tasks: 3, events: 5 });
    expect(producer!.returnValue).toMatchObject({ delivered: 3, replies: [{ sum: 3 }, { sum: 42 }] });
    expect((producer!.returnValue as { refused: string }).refused).toMatch(
      /^redis: the policy does not let this agent publish to channel somebody-elses-channel .*add it to bus\.redis\.publish$/,
    );
    expect(await leftoverContainers()).toEqual([]);
  });
});

describe("MQTT and NATS from Python, under bus rights", () => {
  it("ctx.bus.mqtt() (paho) and await ctx.bus.nats() (nats-py) connect as the run's own identity, with its client id and inbox prefix", async () => {
    const result = await runAgent({
      agent: join(PY, "mqtt_nats.py"),
      policy: definePolicy({
        name: "py-mqtt-nats",
        network: { allowedEndpoints: ["localhost:1883", "localhost:4222"] },
        bus: {
          requireRights: true,
          mqtt: { publish: ["py/{run}/{agent}/*"], subscribe: ["py/{run}/{agent}/*"] },
          nats: { publish: ["py.{run}.{agent}"], subscribe: ["py.{run}.{agent}"] },
        },
      }),
      outputDir: join(await tempDir(), "out"),
    });
    expect(result.status, `${result.error}\n${result.stderr}`).toBe("succeeded");
    const v = result.returnValue as { mqtt: string[]; mqtt_refused_rc: number; nats: string; inbox: string };
    expect(v.mqtt).toEqual(["over mqtt"]);
    expect(v.nats).toBe("over nats");
    expect(v.inbox).toMatch(/^_INBOX_airlock-mqtt_nats-/);
  });
});

describe("airlock run with a .py file", () => {
  it("picks the Python runtime from the extension, and a policy's runtime: that disagrees is refused with the fix", async () => {
    const dir = await tempDir();
    const run = await execa(
      "node",
      [
        CLI,
        "run",
        packagePath("examples", "python", "hello", "agent.py"),
        "--policy",
        packagePath("policies", "hello.yaml"),
        "--output",
        join(dir, "out"),
      ],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^hello \| hello from hello, Python 3\.\d+/m);
    await writeFile(join(dir, "p.yaml"), "name: says-node\nruntime: node\n");
    const refused = await execa(
      "node",
      [
        CLI,
        "run",
        packagePath("examples", "python", "hello", "agent.py"),
        "--policy",
        join(dir, "p.yaml"),
        "--output",
        join(dir, "out2"),
      ],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    expect(refused.exitCode).toBe(125);
    expect(refused.stdout + refused.stderr).toMatch(
      /agent\.py is a Python file, but the policy \(.*p\.yaml\) says runtime: node/,
    );
  });
});
