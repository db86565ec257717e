/**
 * The Python front end's host half without an engine: the SDK policy's translation (rights never
 * widened, broker variables from the run's identity, errors in the SDK's words), the rights file's
 * checks, pinning, the pair rendezvous (with a clock the test drives), and the Python packer that
 * turns an agent function into a file (run with the machine's python3).
 */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { PolicyError } from "../../runner/errors.js";
import { NOTHING } from "../../runner/learn/learn.js";
import { packagePath } from "../../runner/paths.js";
import { imagePins, pinPackages } from "../../runner/sdk/pins.js";
import { overlaps, pubSubNames, Rendezvous } from "../../runner/sdk/rendezvous.js";
import { readRightsFile } from "../../runner/sdk/rights-file.js";
import { parseSdkRequest, sdkPolicy } from "../../runner/sdk/run-sdk-agent.js";
import { type SdkRequest, sdkFix, translatePolicy } from "../../runner/sdk/sdk-policy.js";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";

const temp = () => mkdtemp(join(tmpdir(), "airlock-sdk-unit-"));

function request(dir: string, policy: SdkRequest["policy"], name = "producer_agent"): SdkRequest {
  return parseSdkRequest({
    agent: join(dir, `${name}.py`),
    name,
    caller: { file: join(dir, "producer.py"), line: 49 },
    host_output_path: join(dir, "output"),
    policy,
  });
}

describe("the SDK policy, translated", () => {
  it("keeps the endpoints, gives an unlisted broker an identity with no rights, and takes broker variables from that identity", () => {
    const r = request("/p", {
      network: { disabled: false, allowed_endpoints: ["localhost:6379", "localhost:6379", "api.example.com:443"] },
      allowed_env_vars: ["REDIS_HOST", "REDIS_PASSWORD", "MY_SETTING"],
      pip_packages: ["redis"],
      timeout_seconds: 60,
    });
    const t = translatePolicy(r, undefined, []);
    expect(t.policy.network?.allowedEndpoints).toEqual(["localhost:6379", "api.example.com:443"]);
    // Nothing granted: one name that matches nothing, so that Redis's refusals name the channel or key.
    expect(t.policy.bus).toEqual({
      redis: {
        publish: [NOTHING],
        subscribe: [NOTHING],
        keys: { read: [NOTHING], write: [NOTHING] },
        env: "REDIS_URL",
      },
    });
    expect(t.rightless).toEqual(["redis"]);
    expect(t.policy.env?.allow).toEqual(["MY_SETTING"]);
    expect(t.fromIdentity).toEqual(["REDIS_HOST", "REDIS_PASSWORD"]);
    expect(t.policy.timeoutSeconds).toBe(60);
  });

  it("takes the rights as given, never more", () => {
    const r = request("/p", { network: { allowed_endpoints: ["localhost:5672"] } });
    const t = translatePolicy(r, { bus: { rabbitmq: { queues: { publish: ["task-queue"] } } } }, []);
    expect(t.policy.bus).toEqual({ rabbitmq: { queues: { publish: ["task-queue"] }, env: "RABBITMQ_URL" } });
    expect(t.rightless).toEqual([]);
  });

  it("reports a policy problem against the script's line, in the SDK's keywords", async () => {
    const dir = await temp();
    const r = request(dir, { network: { allowed_endpoints: ["localhost:99999"] } });
    const err = await sdkPolicy(r).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).message).toContain(`${join(dir, "producer.py")}:49`);
    expect((err as PolicyError).issues[0]!.field).toBe("NetworkPolicy(allowed_endpoints=…)[0]");
  });

  it("names the rights file and the agent's entry for a bad bus line", async () => {
    const dir = await temp();
    await writeFile(join(dir, "airlock.yaml"), "producer_agent:\n  bus:\n    redis:\n      publishh: [x]\n");
    const err = await sdkPolicy(request(dir, { network: { allowed_endpoints: ["localhost:6379"] } })).catch((e) => e);
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).issues[0]!.field).toMatch(/^producer_agent\.bus\.redis.* in .*airlock\.yaml$/);
  });

  it("says where each refusal's fix goes in the SDK user's files", () => {
    const r = request("/p", { network: { allowed_endpoints: ["localhost:6379"] } });
    expect(sdkFix("add 10.1.2.3:80 to network.allowedEndpoints, if the agent needs it", r, "airlock.yaml")).toBe(
      "add 10.1.2.3:80 to NetworkPolicy(allowed_endpoints=[…]) in producer.py, if the agent needs it",
    );
    expect(sdkFix("add agent-events to bus.redis.publish", r, "sub/airlock.yaml")).toBe(
      "add agent-events to producer_agent.bus.redis.publish (in sub/airlock.yaml)",
    );
    expect(sdkFix("list t in bus.kafka.topics.produce and set bus.kafka.topics.create: true", r, "airlock.yaml")).toBe(
      "list t in producer_agent.bus.kafka.topics.produce and set producer_agent.bus.kafka.topics.create: true (in airlock.yaml)",
    );
    // A failure reason that named the policy's file for a bus line names the rights file instead.
    expect(sdkFix("a queue outside bus.rabbitmq.queues in /p/producer.py must be added there", r, "airlock.yaml")).toBe(
      "a queue outside producer_agent.bus.rabbitmq.queues must be added there (in airlock.yaml)",
    );
    const inCode = request("/p", { network: { allowed_endpoints: ["localhost:6379"] }, bus: { redis: {} } });
    expect(sdkFix("add x to bus.redis.subscribe", inCode, undefined)).toBe("add x to Policy(bus=…) redis.subscribe");
  });

  it("refuses a malformed request from the front end with what is wrong", () => {
    expect(() => parseSdkRequest({ agent: "a.py" })).toThrow(/the Python front end's request: name/);
  });
});

describe("the rights file", () => {
  it("takes bus and https per agent, and names the entry and the fix for anything else", async () => {
    const dir = await temp();
    const file = join(dir, "airlock.yaml");
    await writeFile(file, "a:\n  bus: { redis: { publish: [x] } }\n  https: [api.example.com]\n");
    expect((await readRightsFile(file)).agents).toEqual({
      a: { bus: { redis: { publish: ["x"] } }, https: ["api.example.com"] },
    });
    await writeFile(file, "a:\n  network: { allowedEndpoints: [evil:1] }\n");
    await expect(readRightsFile(file)).rejects.toThrow(/a\.network: is not a rights key/);
    await writeFile(file, "a: [1]\n");
    await expect(readRightsFile(file)).rejects.toThrow(/a: must be a mapping/);
    await writeFile(file, `a:\n  bus: {}\n${"#".repeat(70 * 1024)}\n`);
    await expect(readRightsFile(file)).rejects.toThrow(/at most 65536/);
  });
});

describe("pinning unpinned pip_packages", () => {
  it("leaves the image's own clients to the image, keeps pins, and takes other names from airlock.lock", async () => {
    const dir = await temp();
    await writeFile(join(dir, "airlock.lock"), "# pins\naiokafka==0.12.0\n");
    const pinned = await pinPackages(
      ["redis", "kafka-python", "six==1.16.0", "aiokafka"],
      join(dir, "s.py"),
      undefined,
    );
    expect(pinned.pip).toEqual(["six==1.16.0", "aiokafka==0.12.0"]);
    expect(pinned.notes).toEqual([
      `redis: the image's ${imagePins().get("redis")}`,
      `kafka-python: the image's ${imagePins().get("kafka-python")}`,
    ]);
  });

  it("says how to pin a name it cannot resolve", async () => {
    const dir = await temp();
    await expect(pinPackages(["aio-pika"], join(dir, "s.py"), undefined)).rejects.toThrow(/aio-pika.*airlock\.lock/s);
  });
});

describe("pairs started from separate scripts", () => {
  it("matches exact names and prefixes", () => {
    expect(overlaps("redis|a", "redis|a")).toBe(true);
    expect(overlaps("redis|a", "nats|a")).toBe(false);
    expect(overlaps("redis|agent-*", "redis|agent-events")).toBe(true);
    expect(overlaps("redis|x*", "redis|y*")).toBe(false);
    expect(pubSubNames({ bus: { redis: { publish: ["a", "b:{run}"], subscribe: ["c"] } } })).toEqual({
      publishes: ["redis|a"],
      subscribes: ["redis|c"],
    });
  });

  it("a publisher waits for a subscriber that registered before it until it is ready, and not for one that never overlaps", async () => {
    const dir = await temp();
    let now = 1_000_000;
    const clock = { dir, now: () => now, sleep: async (ms: number) => void (now += ms) };
    const consumer = await Rendezvous.join("consumer", { publishes: [], subscribes: ["redis|agent-events"] }, clock);
    const other = await Rendezvous.join("other", { publishes: [], subscribes: ["redis|elsewhere"] }, clock);
    const producer = await Rendezvous.join("producer", { publishes: ["redis|agent-events"], subscribes: [] }, clock);
    // Ready after 3 s of the clock: the wait ends then, not before.
    const ready = (async () => {
      while (now < 1_003_000) await new Promise((r) => setTimeout(r, 1));
      await consumer!.markReady();
    })();
    const waited = await producer!.waitForSubscribers(60_000);
    await ready;
    expect(waited).toEqual(["consumer"]);
    expect(now).toBeGreaterThanOrEqual(1_003_000);
    expect(now).toBeLessThan(1_010_000);
    await Promise.all([consumer!.leave(), other!.leave(), producer!.leave()]);
  });

  it("meets only in a folder of this user's that nobody else can open", async () => {
    const dir = await temp();
    await chmod(dir, 0o777);
    await expect(Rendezvous.join("x", { publishes: ["redis|a"], subscribes: [] }, { dir })).rejects.toThrow(
      /not a folder of this user's that only it can open/,
    );
  });

  it("two runs that each publish what the other subscribes to: only the later one waits", async () => {
    const dir = await temp();
    let now = 0;
    const clock = { dir, now: () => now, sleep: async (ms: number) => void (now += ms) };
    const a = await Rendezvous.join("a", { publishes: ["redis|x"], subscribes: ["redis|y"] }, clock);
    now += 10;
    const b = await Rendezvous.join("b", { publishes: ["redis|y"], subscribes: ["redis|x"] }, clock);
    // a registered first: it does not wait for b (b waits for a), so neither waits forever.
    expect(await a!.waitForSubscribers(5_000)).toEqual([]);
    expect(await b!.waitForSubscribers(500)).toEqual(["a"]);
    await Promise.all([a!.leave(), b!.leave()]);
  });
});

describe("the Python packer (an agent function made into a file)", () => {
  const pack = async (dir: string, module: string, fn: string) => {
    await writeFile(join(dir, "mod.py"), module);
    await mkdir(join(dir, "out"), { recursive: true });
    return execa(
      "python3",
      [
        "-c",
        `import sys, mod; from airlock_sdk.agent_source import write_agent_file as w; print(w(mod.${fn}, sys.argv[1])[0])`,
        join(dir, "out"),
      ],
      { cwd: dir, env: { PYTHONPATH: `${packagePath("python-sdk")}:${dir}` }, reject: false, all: true },
    );
  };

  it("carries the function, the imports and constants it uses and its module's helpers, and leaves the rest", async () => {
    const dir = await temp();
    await writeFile(join(dir, "helpers.py"), "def twice(x):\n    return 2 * x\n");
    const run = await pack(
      dir,
      [
        "from isolated_agents_sdk import run_agent",
        "import os, json",
        "import helpers",
        "from pathlib import Path",
        "CHANNEL = 'agent-events'",
        "LIMITS = {'n': 3}",
        "UNUSED = open(__file__)",
        "def helper(v):",
        "    return json.dumps(v)",
        "def agent():",
        "    print(os.environ.get('X'), CHANNEL, LIMITS, helper([1]), helpers.twice(2))",
        "if __name__ == '__main__':",
        "    run_agent(agent=agent)",
      ].join("\n"),
      "agent",
    );
    expect(run.exitCode, run.all).toBe(0);
    const text = await readFile(run.stdout.trim(), "utf8");
    expect(text).toContain("import os, json");
    expect(text).toContain("import helpers");
    expect(text).toContain("CHANNEL = 'agent-events'");
    expect(text).toContain("def helper(v):");
    expect(text).not.toContain("isolated_agents_sdk");
    expect(text).not.toContain("UNUSED");
    expect(text).not.toContain("Path");
    expect(text).toContain("_sdk.run_function(agent)");
    // The project's own module travels as a file beside it; the generated file runs (without the sandbox's airlock).
    expect(await readFile(join(dir, "out", "helpers.py"), "utf8")).toContain("def twice");
    const ran = await execa(
      "python3",
      ["-c", `exec(open(${JSON.stringify(run.stdout.trim())}).read().split("if __name__")[0]); agent()`],
      {
        cwd: join(dir, "out"),
        env: { X: "x", PYTHONPATH: join(dir, "out") },
      },
    );
    expect(ran.stdout).toBe("x agent-events {'n': 3} [1] 4");
  });

  it.each([
    [
      "a global that is not a constant",
      "import socket\nS = socket.socket()\ndef agent():\n    S.close()\n",
      "agent",
      /uses the global S \(a socket\)/,
    ],
    ["a lambda", "agent = lambda: 1\n", "agent", /lambda/],
    ["required parameters", "def agent(x):\n    pass\n", "agent", /takes x; the SDK calls the agent with no arguments/],
    [
      "a closure over an object",
      "def make():\n    o = object()\n    def agent():\n        return o\n    return agent\nagent = make()\n",
      "agent",
      /closure over o/,
    ],
    [
      "the SDK inside the agent",
      "from isolated_agents_sdk import run_agent\ndef agent():\n    run_agent(agent=None)\n",
      "agent",
      /runs on the host/,
    ],
    [
      "a decorated function",
      "import functools\ndef deco(f):\n    return f\n@deco\ndef agent():\n    pass\n",
      "agent",
      /decorated/,
    ],
  ])("refuses %s with AgentNotPortable and the fix", async (_what, module, fn, message) => {
    const dir = await temp();
    const run = await pack(dir, module, fn);
    expect(run.exitCode).not.toBe(0);
    expect(run.all).toContain("AgentNotPortable");
    expect(run.all).toMatch(message);
    expect(run.all).toContain("fix:");
  });
});
