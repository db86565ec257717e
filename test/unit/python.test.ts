/**
 * Python agents without an engine: pip requirement checking, requirements.txt and the policy's
 * packages forms, which language a run uses, what is staged into the container, the compile check
 * (with the host's python3), pip settings, and the explanation of a missing module.
 */
import { execa } from "execa";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PolicyError } from "../../runner/errors.js";
import { parseHashlimit } from "../../runner/gate/denied.js";
import { chooseLanguage } from "../../runner/languages/registry.js";
import { explainPythonFailure } from "../../runner/languages/python/failure.js";
import { parsePipConf, pipSettings } from "../../runner/languages/python/pip-settings.js";
import { stagePython } from "../../runner/languages/python/stage.js";
import { COMPILE_CHECK } from "../../runner/languages/python/syntax.js";
import { definePolicy, loadPolicy, parsePolicy } from "../../runner/policy/index.js";
import { parseRequirementsText, pipProblem } from "../../runner/policy/pip-spec.js";

const tmp = () => mkdtemp(join(tmpdir(), "airlock-py-"));

describe("pip requirements", () => {
  it.each([
    "redis==5.2.1",
    "kafka-python>=2.2,<3",
    "redis[hiredis]==5.2.1",
    "Django~=5.0",
    'pika==1.3.2; python_version >= "3.8"',
    `six==1.16.0 --hash=sha256:${"a".repeat(64)}`,
  ])("accepts %s", (spec) => {
    expect(pipProblem(spec)).toBeUndefined();
  });

  it.each([
    ["redis", "has no version", "pin it, e.g. redis==1.2.3"],
    ["redis==", "is not a version specifier"],
    ["git+https://example.com/x.git", "is a URL or a path"],
    ["./local-package", "is a URL or a path"],
    ["mylib @ https://example.com/mylib.whl", "is a URL or a path"],
    ["-e .", "editable installs"],
    ["--index-url https://evil.example/simple", "is not taken from a policy"],
    ["-r other.txt", "includes another file"],
    ["redis==5.2.1 --no-deps", "is not allowed on a requirement"],
    ["not valid!==1", "is not a valid Python package name"],
    ["redis 5.2.1", "has a version but no operator", "write redis==5.2.1"],
  ] as [string, string, string?][])("refuses %s", (spec, message, fix) => {
    const problem = pipProblem(spec);
    expect(problem?.message).toContain(message);
    if (fix) expect(problem?.fix).toContain(fix);
  });

  it("reads a requirements.txt as pip does: comments, blank lines, continuations, with each problem's line", () => {
    const { requirements, problems } = parseRequirementsText(
      "# top\n\nredis==5.2.1  # pinned\npika \\\n  ==1.3.2\nrequests\n--extra-index-url https://x\n",
    );
    expect(requirements.map((r) => r.spec)).toEqual(["redis==5.2.1", "pika==1.3.2"]);
    expect(problems.map((p) => [p.line, p.message])).toEqual([
      [6, 'package "requests" has no version'],
      [7, '"--extra-index-url" is not taken from a policy'],
    ]);
  });
});

describe("packages in a policy", () => {
  it("keeps the list form for npm, and takes npm: and pip: lists", () => {
    expect(definePolicy({ name: "a", packages: ["ioredis@5.9.2"] }).packages).toMatchObject({
      npm: [{ name: "ioredis" }],
      pip: [],
    });
    const both = definePolicy({ name: "b", packages: { npm: ["zod@4.6.7"], pip: ["redis==5.2.1"] } }).packages;
    expect(both.npm.map((p) => p.spec)).toEqual(["zod@4.6.7"]);
    expect(both.pip.map((p) => p.spec)).toEqual(["redis==5.2.1"]);
  });

  it("reads a requirements.txt relative to the policy file, and reports its problems at their line", async () => {
    const dir = await tmp();
    await mkdir(join(dir, "reqs"));
    await writeFile(join(dir, "reqs", "requirements.txt"), "redis==5.2.1\nkafka-python\n");
    await writeFile(join(dir, "p.yaml"), "name: p\npackages:\n  pip: reqs/requirements.txt\n");
    const err = await loadPolicy(join(dir, "p.yaml")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).message).toMatch(
      /reqs\/requirements\.txt:2:1: packages\.pip \(from .*p\.yaml\): package "kafka-python" has no version/,
    );
    await writeFile(join(dir, "reqs", "requirements.txt"), "redis==5.2.1\nkafka-python==2.2.15\n");
    const policy = await loadPolicy(join(dir, "p.yaml"));
    expect(policy.packages.pip.map((p) => p.spec)).toEqual(["redis==5.2.1", "kafka-python==2.2.15"]);
    expect(policy.packages.pipFile).toBe(join(dir, "reqs", "requirements.txt"));
  });

  it("names the policy's line when the requirements file is missing", () => {
    const err = (() => {
      try {
        parsePolicy("name: p\npackages:\n  pip: nope/requirements.txt\n", "p.yaml", "/nowhere/p.yaml");
      } catch (e) {
        return e as PolicyError;
      }
    })();
    expect(err?.issues[0]).toMatchObject({
      field: "packages.pip",
      line: 3,
      message: expect.stringContaining("requirements.txt: file not found"),
    });
  });

  it("points a Python SDK user's pip_packages at packages.pip, and a spec pip cannot take at its item", () => {
    const err = (() => {
      try {
        parsePolicy("name: p\npip_packages: [redis]\n");
      } catch (e) {
        return e as PolicyError;
      }
    })();
    expect(err?.issues[0]?.fix).toBe("did you mean packages.pip (e.g. packages: { pip: [redis==5.2.1] })?");
    const bad = (() => {
      try {
        parsePolicy("name: p\npackages:\n  pip:\n    - redis\n");
      } catch (e) {
        return e as PolicyError;
      }
    })();
    expect(bad?.issues[0]).toMatchObject({
      field: "packages.pip[0]",
      line: 4,
      message: 'package "redis" has no version',
    });
  });
});

describe("which language a run uses", () => {
  const plain = definePolicy({ name: "p" });
  it("goes by the file's extension, then the policy's runtime:, then the packages of a command", () => {
    expect(chooseLanguage({ agent: "a.py", policy: plain }).name).toBe("python");
    expect(chooseLanguage({ agent: "a.ts", policy: plain }).name).toBe("node");
    expect(chooseLanguage({ policy: plain }).name).toBe("node");
    expect(chooseLanguage({ policy: definePolicy({ name: "p", runtime: "python" }) }).name).toBe("python");
    expect(chooseLanguage({ policy: definePolicy({ name: "p", packages: { pip: ["six==1.16.0"] } }) }).name).toBe(
      "python",
    );
    expect(chooseLanguage({ agent: "agent", runtime: "python", policy: plain }).name).toBe("python");
  });

  it("refuses a file of one language asked to run as another, and a file of none", () => {
    expect(() => chooseLanguage({ agent: "a.py", runtime: "node", policy: plain })).toThrow(
      /a\.py is a Python file, but the run asks for node/,
    );
    expect(() => chooseLanguage({ agent: "a.ts", policy: definePolicy({ name: "p", runtime: "python" }) })).toThrow(
      /says runtime: python/,
    );
    expect(() => chooseLanguage({ agent: "a.rb", policy: plain })).toThrow(
      /is not a TypeScript, JavaScript or Python file/,
    );
  });
});

describe("staging a Python agent", () => {
  it("copies the agent, the modules beside it and its packages; nothing else from its folder", async () => {
    const src = await tmp();
    await writeFile(join(src, "agent.py"), "import helper\n");
    await writeFile(join(src, "helper.py"), "X = 1\n");
    await writeFile(join(src, ".env"), "SECRET=1\n");
    await writeFile(join(src, "data.csv"), "a,b\n");
    await mkdir(join(src, "pkg"));
    await writeFile(join(src, "pkg", "__init__.py"), "");
    await writeFile(join(src, "pkg", "mod.py"), "Y = 2\n");
    await mkdir(join(src, "notapackage"));
    await writeFile(join(src, "notapackage", "x.py"), "");
    await mkdir(join(src, ".venv"));
    await writeFile(join(src, ".venv", "site.py"), "");
    const bundle = await tmp();
    const staged = await stagePython(join(src, "agent.py"), bundle);
    expect(staged.entry).toBe("/opt/agent/run/agent.py");
    expect((await readdir(bundle, { recursive: true })).sort()).toEqual([
      "agent.py",
      "helper.py",
      "pkg",
      "pkg/__init__.py",
      "pkg/mod.py",
    ]);
  });
});

describe("the compile check", () => {
  const compile = async (files: Record<string, string>, entry = "agent.py") => {
    const dir = await tmp();
    for (const [name, text] of Object.entries(files)) {
      await mkdir(join(dir, name, ".."), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    const run = await execa("python3", ["-I", "-c", COMPILE_CHECK, dir, join(dir, entry)]);
    return (JSON.parse(run.stdout) as { file: string; line: number; message: string }[]).map((e) => ({
      ...e,
      file: e.file.slice(dir.length + 1),
    }));
  };

  it("finds errors in the entry and in the local modules it imports (also relatively), not in the others", async () => {
    expect(await compile({ "agent.py": "x = (\n" })).toMatchObject([{ file: "agent.py", line: 1 }]);
    expect(
      await compile({
        "agent.py": "import pkg.sub\n",
        "pkg/__init__.py": "",
        "pkg/sub.py": "from . import deep\n",
        "pkg/deep.py": "def f(:\n",
      }),
    ).toMatchObject([{ file: "pkg/deep.py", line: 1, message: "SyntaxError: invalid syntax" }]);
    expect(await compile({ "agent.py": "import os, json\n", "unused.py": "def f(:\n" })).toEqual([]);
    // Compiling never runs the code.
    expect(
      await compile({
        "agent.py": "raise SystemExit(3)\nimport helper\n",
        "helper.py": "open('/tmp/airlock-compile-ran', 'w')\n",
      }),
    ).toEqual([]);
  });
});

describe("pip settings for image builds", () => {
  it("reads [global] and [install] of pip.conf, continuation lines joined, later files and PIP_* variables winning", () => {
    expect(
      parsePipConf(
        "[global]\nindex-url = https://a/simple\nextra-index-url =\n    https://b/simple\n    https://c/simple\n[freeze]\ntimeout = 1\n[install]\ntrusted_host = a\n",
      ),
    ).toEqual({
      "index-url": "https://a/simple",
      "extra-index-url": "https://b/simple https://c/simple",
      "trusted-host": "a",
    });
    const settings = pipSettings({
      PIP_INDEX_URL: "https://mirror.example/simple",
      PIP_DEFAULT_TIMEOUT: "60",
      PIP_FIND_LINKS: "/opt/wheels",
      HOME: "/nonexistent",
    });
    const conf = settings.conf.toString();
    expect(conf).toContain("index-url = https://mirror.example/simple");
    // A host folder the build cannot see is not passed on.
    expect(conf).not.toContain("/opt/wheels");
    expect(settings.index).toBe("https://mirror.example/simple");
  });
});

describe("a missing module", () => {
  it("is explained with the distribution to add and where", () => {
    const stderr =
      "Traceback (most recent call last):\n  File \"/opt/agent/run/a.py\", line 1\nModuleNotFoundError: No module named 'kafka'\n";
    expect(explainPythonFailure(stderr, definePolicy({ name: "p" }))).toBe(
      'the agent imports "kafka", which is not installed in its image: add kafka-python==<version> to packages.pip in <inline>',
    );
    expect(explainPythonFailure("ValueError: x\n", definePolicy({ name: "p" }))).toBeUndefined();
  });

  it("the Isolated Agents SDK's own module points at import airlock, not at packages.pip", () => {
    const hint = explainPythonFailure(
      "ModuleNotFoundError: No module named 'isolated_agents_sdk'\n",
      definePolicy({ name: "p" }),
    )!;
    expect(hint).toMatch(/import airlock/);
    expect(hint).not.toMatch(/packages\.pip/);
  });
});

describe("a broker that refused a Python agent", () => {
  const redisPolicy = definePolicy({
    name: "p",
    network: { allowedEndpoints: ["localhost:6379"] },
    env: { allow: ["REDIS_URL"] },
  });
  it("redis-py's AuthenticationError without bus rights: add bus.redis, REDIS_URL through env gives no credentials", () => {
    expect(
      explainPythonFailure("redis.exceptions.AuthenticationError: Authentication required.\n", redisPolicy),
    ).toMatch(/add bus: \{ redis: \{\} \}/);
  });
  it("pika's ACCESS_REFUSED on amq.default: publish through the run's exchange", () => {
    const stderr = `pika.exceptions.ChannelClosedByBroker: (403, "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'airlock-x'")\n`;
    expect(explainPythonFailure(stderr, definePolicy({ name: "p" }))).toMatch(/AIRLOCK_AMQP_EXCHANGE/);
  });
  it("pika's ACCESS_REFUSED on a queue declare: check it passively", () => {
    const stderr = `pika.exceptions.ChannelClosedByBroker: (403, "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'airlock-x'")\n`;
    expect(explainPythonFailure(stderr, definePolicy({ name: "p" }))).toMatch(/passive=True/);
  });
});

describe("the loopback report", () => {
  it("leaves out connections to ports the sandbox opened itself (socketpair over 127.0.0.1)", () => {
    const cap = 2000 * 1000;
    const cost = 1000;
    const table = [
      `1 127.0.0.1:40000->127.0.0.1:47075 ${cap - cost} ${cap} ${cost}`,
      `1 127.0.0.1:40001->127.0.0.1:8080 ${cap - cost} ${cap} ${cost}`,
    ].join("\n");
    expect(parseHashlimit(table, "tcp", true).map((d) => d.destination)).toEqual(["127.0.0.1:8080"]);
  });
});

describe("the Python runtime's stop", () => {
  it("calls an on_stop callback registered after the stop came at once, and each callback only once", async () => {
    // The runtime's own module, with the host's python3: a callback, the stop, then a late callback.
    const script = [
      "import os, signal, airlock",
      "calls = []",
      "airlock.install_stop_handler()",
      "airlock.on_stop(lambda: calls.append('early'))",
      "try:",
      "    os.kill(os.getpid(), signal.SIGTERM)",
      "    signal.pause()",
      "except airlock.Stopped:",
      "    calls.append('stopped')",
      "airlock.on_stop(lambda: calls.append('late'))",
      "os.kill(os.getpid(), signal.SIGTERM)  # a second stop raises nothing and calls nothing again",
      "print(calls, airlock.stopping.is_set())",
    ].join("\n");
    const { stdout } = await execa("python3", ["-c", script], {
      env: { PYTHONPATH: join(import.meta.dirname, "../../agent-runtime/python") },
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe("['early', 'stopped', 'late'] True");
  });
});
