/**
 * The Isolated Agents SDK's four examples, as its users run them: the front end installed with pip
 * into a fresh virtual environment (no package index: PIP_NO_INDEX), the scripts copied from
 * examples/python-sdk/ (the page's, byte for byte but for the endpoint host), started the page's way
 * (`python3 consumer.py & python3 producer.py`) against the local brokers. Then the same scripts
 * with one thing more than their policy allows — an endpoint the policy does not list, a publish
 * the rights file does not grant — are refused, and the refusal is reported with its fix. The
 * kubernetes suite runs this file too, every agent a Pod.
 */
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { packagePath } from "../../runner/paths.js";
import { bridgeGateway, tcpDecoy, tempDir } from "./helpers.js";

let venvBin: string;

beforeAll(async () => {
  const venv = join(await tempDir("airlock-sdk-venv-"), "venv");
  await execa("python3", ["-m", "venv", venv]);
  await execa(join(venv, "bin", "pip"), ["install", "--quiet", packagePath("python-sdk")], {
    env: { PIP_NO_INDEX: "1" },
  });
  venvBin = join(venv, "bin");
}, 120_000);

/** A copy of an example folder, as a user's own project folder. */
async function example(name: string): Promise<string> {
  const dir = join(await tempDir("airlock-sdk-example-"), name);
  await cp(packagePath("examples", "python-sdk", name), dir, {
    recursive: true,
    filter: (src) => !/(output|workspace)$|\.result\.json$|\.denials\.jsonl$/.test(src),
  });
  return dir;
}

/**
 * Runs a shell line the way the page does, in the activated virtual environment (activated inside the
 * shell, as a user does: a shell's own startup files may put other Pythons first on PATH).
 */
async function shell(dir: string, line: string, timeout = 240_000) {
  return execa("bash", ["-c", `. "${venvBin}/activate"; ${line}`], {
    cwd: dir,
    all: true,
    reject: false,
    timeout,
  });
}

const lines = async (file: string) => (await readFile(file, "utf8")).split("\n").filter(Boolean);

describe("the Python SDK's examples, run unchanged under airlock", () => {
  it("Redis pub/sub: the producer waits for the consumer's subscription, and all 10 messages arrive", async () => {
    const dir = await example("redis-pubsub");
    const run = await shell(dir, "python3 consumer.py & python3 producer.py; wait");
    expect(run.all).toContain("Producer completed: 0");
    expect(run.all).toContain("Consumer completed: 0");
    expect(await lines(join(dir, "output", "results.txt"))).toEqual(
      Array.from({ length: 10 }, (_, i) => `Processed: Process item ${i}`),
    );
    expect(await readFile(join(dir, "output", "summary.txt"), "utf8")).toMatch(/^(Received|Published) 10 messages/);
  }, 240_000);

  it("RabbitMQ work queue: basic_publish(exchange='') reaches the queue through the run's own exchange", async () => {
    const dir = await example("rabbitmq-work-queue");
    const run = await shell(dir, "python3 worker.py & python3 publisher.py; wait");
    expect(run.all).toContain("Publisher completed: 0");
    expect(run.all).toContain("Worker completed: 0");
    const done = await lines(join(dir, "output", "results.txt"));
    expect(done).toHaveLength(5);
    for (const line of done) expect(line).toMatch(/^Completed task \d+: Task \d+$/);
  }, 240_000);

  it("Kafka streaming: 100 events produced with the run's SCRAM user, 100 consumed in agent-group", async () => {
    const dir = await example("kafka-streaming");
    const run = await shell(dir, "python3 consumer.py & python3 producer.py; wait");
    expect(run.all).toContain("Producer completed: 0");
    expect(run.all).toContain("Consumer completed: 0");
    const events = await lines(join(dir, "output", "results.txt"));
    expect(events).toHaveLength(100);
    for (const line of events) expect(line).toMatch(/^Processed event \d+: value=[\d.]+$/);
  }, 240_000);

  it("Redis request/reply: a password-less redis.Redis() is this run's own user, and the reply comes back", async () => {
    const dir = await example("redis-request-reply");
    const run = await shell(dir, "python3 replier.py & python3 requester.py; wait");
    expect(run.all).toContain("Requester completed: 0");
    expect(run.all).toContain("Replier completed: 0");
    expect(await readFile(join(dir, "output", "result.txt"), "utf8")).toBe("Result: 30");
  }, 240_000);
});

describe("the same scripts with one thing more than their policy allows", () => {
  it.each([
    ["redis-pubsub", "producer.py", "producer.py", "Producer completed: 1", "producer_agent"],
    ["rabbitmq-work-queue", "publisher.py", "publisher.py", "Publisher completed: 1", "publisher_agent"],
    ["kafka-streaming", "producer.py", "producer.py", "Producer completed: 1", "kafka_producer"],
    ["redis-request-reply", "request_reply.py", "requester.py", "Requester completed: 1", "request_agent"],
  ])(
    "%s: an endpoint the agent's code adds is refused at the gate and reported with the line to add",
    async (name, edit, start, failed, agent) => {
      // A server on the host's address on airlock's bridge: reachable from a container unless the gate refuses.
      const decoy = await tcpDecoy(await bridgeGateway());
      try {
        const dir = await example(name);
        const source = await readFile(join(dir, edit), "utf8");
        const forbidden = source.replace(
          "    output_dir.mkdir(parents=True, exist_ok=True)\n",
          `    output_dir.mkdir(parents=True, exist_ok=True)\n    import socket; socket.create_connection(("${decoy.host}", ${decoy.port}), timeout=5)\n`,
        );
        expect(forbidden).not.toBe(source);
        await writeFile(join(dir, edit), forbidden);
        const run = await shell(dir, `python3 ${start}`, 120_000);
        expect(run.all).toContain(failed);
        expect(run.all).toMatch(new RegExp(`${agent}: refused \\d+ things?`));
        expect(run.all).toContain(
          `add ${decoy.host}:${decoy.port} to NetworkPolicy(allowed_endpoints=[…]) in ${start}`,
        );
        const denials = (await lines(join(dir, "output.denials.jsonl"))).map((l) => JSON.parse(l));
        expect(denials.some((d) => d.layer === "network" && d.resource === `${decoy.host}:${decoy.port}`)).toBe(true);
        expect(decoy.hits()).toBe(0);
      } finally {
        await decoy.close();
      }
    },
    180_000,
  );

  it("a publish the rights file does not grant is refused by Redis as the run's user, with the rights line to add", async () => {
    const dir = await example("redis-pubsub");
    const rights = await readFile(join(dir, "airlock.yaml"), "utf8");
    // The producer keeps its identity, without the publish right: never widened to make it pass.
    await writeFile(join(dir, "airlock.yaml"), rights.replace("publish: [agent-events]", "publish: [other-events]"));
    const run = await shell(dir, "python3 producer.py", 120_000);
    expect(run.all).toContain("Producer completed: 1");
    const denials = (await lines(join(dir, "output.denials.jsonl"))).map((l) => JSON.parse(l));
    const publish = denials.find((d) => d.kind === "redis" && d.resource === "agent-events");
    expect(publish, JSON.stringify(denials)).toBeDefined();
    expect(publish.fix).toBe("add agent-events to producer_agent.bus.redis.publish (in airlock.yaml)");

    // No rights file at all: an identity that may do nothing, and the refusal names the line to write.
    await rm(join(dir, "airlock.yaml"));
    const bare = await shell(dir, "python3 producer.py", 120_000);
    expect(bare.all).toContain("Producer completed: 1");
    expect(bare.all).toContain("no rights for producer_agent in airlock.yaml beside producer.py");
    expect(bare.all).toMatch(
      /redis publish channel agent-events .*→ add agent-events to producer_agent\.bus\.redis\.publish \(in airlock\.yaml\)/,
    );
  }, 180_000);

  it("an SDK policy problem is an error naming the script's line, the SDK keyword and the fix", async () => {
    const dir = await example("redis-pubsub");
    const source = await readFile(join(dir, "producer.py"), "utf8");
    await writeFile(join(dir, "producer.py"), source.replace('"localhost:6379"', '"localhost:99999"'));
    const run = await shell(dir, "python3 producer.py", 60_000);
    expect(run.exitCode).not.toBe(0);
    expect(run.all).toMatch(/producer\.py:\d+: .*NetworkPolicy\(allowed_endpoints=…\)\[0\]/);
    expect(run.all).toContain("PolicyError");
    await rm(join(dir, "output"), { recursive: true, force: true });
  }, 60_000);
});

describe("airlock_sdk.Runner: many runs from one Python process", () => {
  it("keeps one runner with a warm pool: later runs take a sandbox started before they were asked for", async () => {
    const dir = await tempDir("airlock-sdk-runner-");
    await writeFile(
      join(dir, "many.py"),
      [
        "import json, time",
        "from airlock_sdk import Runner, Policy, NetworkPolicy, PolicyError",
        "",
        "def hello():",
        "    print('hello from the sandbox')",
        "",
        "if __name__ == '__main__':",
        "    with Runner(pool=1) as runner:",
        "        try:",
        "            runner.run_agent(agent=hello, policy=Policy(network=NetworkPolicy(allowed_endpoints=['localhost:0'])))",
        "        except PolicyError as err:",
        "            print('REFUSED ' + str(err).splitlines()[1].strip())",
        "        for i in range(3):",
        "            r = runner.run_agent(agent=hello, working_dir='./workspace', host_output_path=f'./out{i}',",
        "                                 policy=Policy(network=NetworkPolicy(allowed_endpoints=['localhost:6379']), timeout_seconds=30))",
        "            mode = r.raw.get('startup', {}).get('mode', 'cold')",
        "            print('RUN ' + json.dumps({'status': r.status, 'mode': mode, 'out': r.stdout}))",
        "            time.sleep(2)",
      ].join("\n"),
    );
    const run = await shell(dir, "python3 many.py", 180_000);
    // A run that cannot start is that call's PolicyError; the runner goes on with the next ones.
    expect(run.all).toMatch(/REFUSED .*many\.py:\d+: NetworkPolicy\(allowed_endpoints=…\)\[0\]/);
    const runs = run
      .all!.split("\n")
      .filter((l) => l.startsWith("RUN "))
      .map((l) => JSON.parse(l.slice(4)) as { status: string; mode: string; out: string });
    expect(runs, run.all).toHaveLength(3);
    for (const r of runs) expect(r).toMatchObject({ status: "succeeded", out: "hello from the sandbox\n" });
    expect(runs[0]!.mode).toBe("cold");
    // The warm pool is the Docker backend's: as Pods (the kubernetes suite runs this file too) every run starts cold.
    if (process.env.AIRLOCK_BACKEND === "kubernetes") expect(runs.map((r) => r.mode)).toEqual(["cold", "cold", "cold"]);
    else expect(runs.slice(1).map((r) => r.mode)).toContain("warm");
  }, 180_000);
});

describe("airlock sdk-run --serve: the protocol the Runner speaks", () => {
  it("answers a line that is not JSON and a request that is not one with errors, each tagged with its id, and ends when its input does", async () => {
    const serve = execa("node", [packagePath("dist", "runner", "cli", "main.js"), "sdk-run", "--serve"], {
      input: `not json\n${JSON.stringify({ id: 7, request: { agent: "a.py" } })}\n`,
      reject: false,
      timeout: 60_000,
    });
    const { stdout, exitCode } = await serve;
    const answers = stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(answers).toEqual([
      { id: null, error: expect.objectContaining({ code: "USAGE", message: expect.stringContaining("not JSON") }) },
      {
        id: 7,
        error: expect.objectContaining({ code: "SDK_REQUEST_INVALID", message: expect.stringContaining("name") }),
      },
    ]);
    expect(exitCode).toBe(0);
  });
});
