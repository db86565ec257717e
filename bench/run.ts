/**
 * npm run bench: airlock against its baselines, measured side by side in one run on the same image.
 * Prints a table and writes bench/results.md. Needs the engine, Redis and Kafka (scripts/setup.sh).
 *
 *   1. cold start of one agent vs `docker run --rm IMAGE node -e 0`, and time to the agent's first line
 *   2. 20 agents at once vs 20 concurrent `docker run --rm`
 *   3. 100,000 messages through the gate (Redis pub/sub, Kafka) vs the same pair with unrestricted
 *      network; Redis request/reply round trips, gated and not
 *   4. the runner's memory per concurrent agent, and wall time for 1, 5, 20 and 50 agents
 *   5./6. bus rights, NATS and MQTT through the gate
 *   7. agents as Pods on a local Kubernetes cluster against plain Pods (bench/kubernetes.ts)
 *   8. warm starts from the warm pool, a cold start with nothing ready, 20 at once warm, and the
 *      memory a pooled sandbox holds (bench/warm.ts)
 *   9. writing into /output (a tmpfs volume, copied out) vs a bind-mounted folder (bench/output.ts)
 */
import { mkdir, mkdtemp, rm, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { execa } from "execa";
import { definePolicy, runAgent, type Policy, type PolicyInput } from "../runner/index.js";
import { dockerClient, ensureImages } from "../runner/internal.js";
import { localBrokersFile, openBusRights } from "../runner/bus/rights.js";
import { readFileSync } from "node:fs";
import { ensureNetwork } from "../runner/backends/docker/network.js";
import { ensureNpmPackagesImage } from "../runner/languages/node/packages-image.js";
import { ensurePythonImage } from "../runner/languages/python/image.js";
import { defaultRunner } from "../runner/runner.js";
import { bundleAgent } from "../runner/languages/node/bundle.js";
import { packagePath } from "../runner/paths.js";
import { fmt, percentile, summarize } from "./stats.js";
import { kubernetesSection } from "./kubernetes.js";
import { warmSection } from "./warm.js";
import { outputSection } from "./output.js";
import { cliSection } from "./cli.js";

const AGENTS = packagePath("bench", "agents");
const REPS = Number(process.env.BENCH_REPS ?? 5);
const N_MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const docker = dockerClient();

interface Row {
  section: string;
  metric: string;
  airlock: string;
  baseline: string;
  ratio: number;
  /** Each repetition's airlock figure over the baseline measured right next to it. */
  paired: string;
  /** On the ratio of the medians, or (`absolute`) on airlock's own figure (`of`: its median, or its p99). */
  target?: { op: "<=" | ">=" | "<"; value: number; absolute?: { of: "median" | "p99"; unit: string; actual: number } };
}
const rows: Row[] = [];
const log = (...a: unknown[]) => console.error("[bench]", ...a);

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "airlock-bench-"));
  await chmod(d, 0o755);
  return d;
}

/**
 * A row: both sides' min / median / max, the ratio of their medians (what the target is checked
 * against), and the spread of the paired ratios (repetition i of airlock over repetition i of the
 * baseline, measured back to back), which shows how much of a difference is the machine's noise.
 */
/** A row of one figure each (a percentile), with the paired column left empty. */
function addFigureRow(section: string, metric: string, a: number, b: number, unit: string, target?: Row["target"]) {
  rows.push({
    section,
    metric,
    airlock: `${a.toFixed(0)} ${unit}`,
    baseline: `${b.toFixed(0)} ${unit}`,
    ratio: a / b,
    paired: "",
    ...(target ? { target } : {}),
  });
}

function addRow(
  section: string,
  metric: string,
  a: number[],
  b: number[],
  unit: string,
  target?: Row["target"],
  digits = 0,
) {
  const sa = summarize(a),
    sb = summarize(b);
  const paired = summarize(a.map((v, i) => v / b[i]!));
  const f = (v: number) => `${v.toFixed(2)}×`;
  rows.push({
    section,
    metric,
    airlock: fmt(sa, unit, digits),
    baseline: fmt(sb, unit, digits),
    ratio: sa.median / sb.median,
    paired: `${f(paired.min)} / ${f(paired.median)} / ${f(paired.max)}`,
    ...(target ? { target } : {}),
  });
}

// ---------- baselines -------------------------------------------------------------------------

async function plainDockerRun(
  image: string,
  script = "0",
  interpreter: "node" | "python3" = "node",
): Promise<{ ms: number; stdout: string }> {
  const t = performance.now();
  const r = await execa("docker", [
    "run",
    "--rm",
    "--entrypoint",
    interpreter,
    image,
    interpreter === "node" ? "-e" : "-c",
    script,
  ]);
  return { ms: performance.now() - t, stdout: r.stdout };
}

/**
 * The baseline of a gated pair: the same bundle in the same image, with the policy's memory and cpu
 * limits (a memory limit alone costs Redis pub/sub about 8% on this machine, gate or no gate), and an
 * unrestricted network: the host's own, where the agents' localhost endpoints simply work.
 */
async function runUngated(
  image: string,
  bundleDir: string,
  env: Record<string, string>,
  onLine: (line: string) => void,
  resources: Policy["resources"],
  network = "host",
): Promise<void> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: ["/opt/agent/run/agent.mjs"],
    User: "10001:10001",
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    AttachStdout: true,
    AttachStderr: true,
    Labels: { "dev.airlock.bench": "baseline" },
    HostConfig: {
      NetworkMode: network,
      Binds: [`${bundleDir}:/opt/agent/run:ro`],
      Init: true,
      Memory: resources.memoryBytes,
      MemorySwap: resources.memoryBytes,
      NanoCpus: Math.round(resources.cpus * 1e9),
    },
  });
  const stream = await container.attach({ stream: true, stdout: true, stderr: true });
  const out = new PassThrough();
  let partial = "";
  out.on("data", (d: Buffer) => {
    const text = partial + d.toString();
    const lines = text.split("\n");
    partial = lines.pop()!;
    lines.forEach(onLine);
  });
  docker.modem.demuxStream(stream, out, out);
  const exited = container.wait({ condition: "next-exit" });
  await container.start();
  await exited;
  await container.remove({ force: true });
}

// ---------- helpers for gated/ungated pairs ---------------------------------------------------

interface Prepared {
  policy: Policy;
  image: string;
  bundles: Record<string, string>;
}

async function prepare(
  name: string,
  endpoint: string,
  env: Record<string, string>,
  agents: string[],
  bus?: PolicyInput["bus"],
  packages = ["ioredis@5.9.2", "kafkajs@2.2.4"],
): Promise<Prepared> {
  const policy = definePolicy({
    name,
    network: { allowedEndpoints: [endpoint] },
    env: { allow: Object.keys(env) },
    ...(bus ? { bus } : {}),
    packages,
    timeoutSeconds: 300,
    resources: { memory: "1g", cpus: 2 },
  });
  const images = await ensureImages(docker);
  const { id: image } = await ensureNpmPackagesImage(
    docker,
    { tag: images.agent, id: images.ids.agent },
    policy.packages.npm,
  );
  const bundles: Record<string, string> = {};
  for (const a of agents) {
    const dir = await tmp();
    await bundleAgent(join(AGENTS, `${a}.ts`), policy, dir);
    bundles[a] = dir;
  }
  return { policy, image, bundles };
}

/** Messages per second from the producer's first send to the consumer's last message. */
function msgPerSecond(
  r: { consumer: Record<string, unknown>; producer: Record<string, unknown> },
  n = N_MESSAGES,
): number {
  return (n / ((r.consumer.last as number) - (r.producer.started as number))) * 1000;
}

function resultOf(lines: string[]): Record<string, number | number[]> {
  const line = lines.find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`no RESULT line in:\n${lines.slice(-20).join("\n")}`);
  return JSON.parse(line.slice(7));
}

/** Run a consumer (until it says READY) then a producer; gated through runAgent or ungated. */
async function pair(
  p: Prepared,
  gated: boolean,
  consumer: string,
  producer: string,
  env: Record<string, string>,
  ungated: { network: string; env?: Record<string, string> } = { network: "host" },
) {
  // The previous pair's containers are still being removed in the background: not on this one's clock.
  await settle();
  const lines: Record<string, string[]> = { [consumer]: [], [producer]: [] };
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const run = (agent: string) => {
    const onLine = (l: string) => {
      lines[agent]!.push(l);
      if (l === "READY") ready();
    };
    if (!gated)
      return runUngated(
        p.image,
        p.bundles[agent]!,
        { ...env, ...ungated.env },
        onLine,
        p.policy.resources,
        ungated.network,
      );
    return runAgent({
      agent: join(AGENTS, `${agent}.ts`),
      policy: p.policy,
      env,
      outputDir: join(tmpdir(), "airlock-bench-out", agent),
      workingDir: AGENTS,
      onEvent: (e) => e.type === "output" && onLine(e.line),
    }).then((r) => {
      if (r.status !== "succeeded") throw new Error(`${agent}: ${r.status} ${r.error ?? ""} ${r.stderr.slice(-500)}`);
    });
  };
  const c = run(consumer);
  await isReady;
  const pr = run(producer);
  await Promise.all([c, pr]);
  return { consumer: resultOf(lines[consumer]!), producer: resultOf(lines[producer]!) };
}

/** Between measurements: let airlock's background work (stopping gates, warming the next) finish, so it neither helps nor hurts the next figure. */
async function settle(): Promise<void> {
  await Promise.all([defaultRunner().containersRemoved(), defaultRunner().gatesIdle()]);
}

// ---------- 1. cold start ---------------------------------------------------------------------

async function coldStart(agentImage: string) {
  log("1. cold start");
  const gatedPolicy = definePolicy({ name: "bench-exit", network: { allowedEndpoints: ["localhost:6379"] } });
  const closedPolicy = definePolicy({ name: "bench-exit-closed" });
  const out = await tmp();
  const plain: number[] = [],
    gated: number[] = [],
    closed: number[] = [],
    firstGated: number[] = [],
    firstPlain: number[] = [];
  // Warm-up: images, network, module caches.
  await runAgent({
    agent: join(AGENTS, "exit.ts"),
    policy: gatedPolicy,
    outputDir: join(out, "warm"),
    workingDir: AGENTS,
  });
  await plainDockerRun(agentImage);
  for (let i = 0; i < REPS; i++) {
    await settle();
    plain.push((await plainDockerRun(agentImage)).ms);
    let t = performance.now();
    await runAgent({
      agent: join(AGENTS, "exit.ts"),
      policy: gatedPolicy,
      outputDir: join(out, `g${i}`),
      workingDir: AGENTS,
    });
    gated.push(performance.now() - t);
    await settle();
    t = performance.now();
    await runAgent({
      agent: join(AGENTS, "exit.ts"),
      policy: closedPolicy,
      outputDir: join(out, `c${i}`),
      workingDir: AGENTS,
    });
    closed.push(performance.now() - t);
    await settle();
    const t0 = Date.now();
    const r = await runAgent({
      agent: join(AGENTS, "first-line.ts"),
      policy: gatedPolicy,
      outputDir: join(out, `f${i}`),
      workingDir: AGENTS,
    });
    firstGated.push(Number(/FIRST_LINE (\d+)/.exec(r.stdout)![1]) - t0);
    await settle();
    const p0 = Date.now();
    const p = await plainDockerRun(agentImage, "console.log('FIRST_LINE ' + Date.now())");
    firstPlain.push(Number(/FIRST_LINE (\d+)/.exec(p.stdout)![1]) - p0);
  }
  addRow("1. cold start", "one agent that only exits, gated (one endpoint)", gated, plain, "ms", {
    op: "<=",
    value: 1.25,
  });
  addRow("1. cold start", "one agent that only exits, network disabled", closed, plain, "ms", {
    op: "<=",
    value: 1.25,
  });
  // The default runner keeps a gate namespace ready between runs: this run's container joins it (startup.how "ready gate").
  addRow(
    "1. cold start",
    "runAgent() → agent's first line (gated) vs docker run → first line",
    firstGated,
    firstPlain,
    "ms",
    { op: "<=", value: 1.1 },
  );
}

/** The same for a Python agent, against `docker run` of the same Python image. */
async function pythonColdStart(pythonImage: string) {
  log("1. cold start (Python)");
  const gatedPolicy = definePolicy({ name: "bench-exit-py", network: { allowedEndpoints: ["localhost:6379"] } });
  const out = await tmp();
  const plain: number[] = [],
    gated: number[] = [],
    firstGated: number[] = [],
    firstPlain: number[] = [];
  await runAgent({ agent: join(AGENTS, "exit.py"), policy: gatedPolicy, outputDir: join(out, "warm") });
  await plainDockerRun(pythonImage, "0", "python3");
  for (let i = 0; i < REPS; i++) {
    await settle();
    plain.push((await plainDockerRun(pythonImage, "0", "python3")).ms);
    const t = performance.now();
    await runAgent({ agent: join(AGENTS, "exit.py"), policy: gatedPolicy, outputDir: join(out, `g${i}`) });
    gated.push(performance.now() - t);
    await settle();
    const t0 = Date.now();
    const r = await runAgent({
      agent: join(AGENTS, "first_line.py"),
      policy: gatedPolicy,
      outputDir: join(out, `f${i}`),
    });
    firstGated.push(Number(/FIRST_LINE (\d+)/.exec(r.stdout)![1]) - t0);
    await settle();
    const p0 = Date.now();
    const p = await plainDockerRun(
      pythonImage,
      "import time; print('FIRST_LINE %d' % (time.time() * 1000))",
      "python3",
    );
    firstPlain.push(Number(/FIRST_LINE (\d+)/.exec(p.stdout)![1]) - p0);
  }
  addRow("1. cold start", "one Python agent that only exits, gated (one endpoint)", gated, plain, "ms", {
    op: "<=",
    value: 1.25,
  });
  addRow(
    "1. cold start",
    "Python: runAgent() → agent's first line (gated) vs docker run → first line",
    firstGated,
    firstPlain,
    "ms",
  );
}

// ---------- 6. NATS and MQTT, and sealed messages -----------------------------------------------

type LocalAdmin = { host: string; port: number; user: string; password: string };

/** The admin entry `airlock brokers start` wrote for a local broker. */
function localAdmin(kind: string): LocalAdmin {
  return (JSON.parse(readFileSync(localBrokersFile(), "utf8")) as Record<string, LocalAdmin>)[kind]!;
}

async function natsAndMqtt(): Promise<void> {
  log("6. NATS and MQTT through the gate, sealed messages");
  const pkgs = ["nats@2.29.3", "mqtt@5.16.0"];
  const nats = localAdmin("nats");
  const mqtt = localAdmin("mqtt");
  const mqttN = Math.min(N_MESSAGES, 20_000);
  const natsEnv = (id: string) => ({ BENCH_N: String(N_MESSAGES), BENCH_SUBJECT: `bench.${id}` });
  const mqttEnv = (id: string) => ({ BENCH_N: String(mqttN), BENCH_TOPIC: `bench/${id}` });
  const np = await prepare(
    "bench-nats",
    "localhost:4222",
    natsEnv("x"),
    ["nats-sub", "nats-pub", "nats-replier", "nats-requester"],
    { nats: { publish: ["bench.*"], subscribe: ["bench.*"], reply: true } },
    pkgs,
  );
  const mp = await prepare(
    "bench-mqtt",
    "localhost:1883",
    mqttEnv("x"),
    ["mqtt-sub", "mqtt-pub", "mqtt-replier", "mqtt-requester"],
    { mqtt: { publish: ["bench/*"], subscribe: ["bench/*"] } },
    pkgs,
  );
  const openNats = {
    network: "host",
    env: {
      NATS_URL: `nats://${encodeURIComponent(nats.user)}:${encodeURIComponent(nats.password)}@localhost:${nats.port}`,
    },
  };
  const openMqtt = {
    network: "host",
    env: {
      MQTT_URL: `mqtt://${encodeURIComponent(mqtt.user)}:${encodeURIComponent(mqtt.password)}@localhost:${mqtt.port}`,
    },
  };
  const t = {
    nats: { gated: [] as number[], open: [] as number[] },
    mqtt: { gated: [] as number[], open: [] as number[] },
  };
  const rr = { gated: [] as number[], open: [] as number[] };
  const mrr = { gated: [] as number[], open: [] as number[] };
  const reps = Math.max(3, Math.min(REPS * 2 - 1, 9));
  for (let i = 0; i < reps; i++) {
    for (const gated of i % 2 === 0 ? [true, false] : [false, true]) {
      const key = gated ? "gated" : "open";
      const id = `${Date.now()}-${i}-${key}`;
      t.nats[key].push(msgPerSecond(await pair(np, gated, "nats-sub", "nats-pub", natsEnv(id), openNats)));
      t.mqtt[key].push(msgPerSecond(await pair(mp, gated, "mqtt-sub", "mqtt-pub", mqttEnv(id), openMqtt), mqttN));
      const q = await pair(np, gated, "nats-replier", "nats-requester", { ...natsEnv(id), BENCH_N: "2000" }, openNats);
      rr[key].push(percentile(q.producer.rtts as number[], 50));
      const mq = await pair(mp, gated, "mqtt-replier", "mqtt-requester", { ...mqttEnv(id), BENCH_N: "2000" }, openMqtt);
      mrr[key].push(percentile(mq.producer.rtts as number[], 50));
    }
    log(
      `  rep ${i + 1}/${reps}: nats ${t.nats.gated.at(-1)!.toFixed(0)} vs ${t.nats.open.at(-1)!.toFixed(0)} msg/s, mqtt ${t.mqtt.gated.at(-1)!.toFixed(0)} vs ${t.mqtt.open.at(-1)!.toFixed(0)} msg/s`,
    );
  }
  addRow(
    "6. NATS, MQTT, sealed",
    `${N_MESSAGES.toLocaleString("en")} messages over NATS (gated, own user) vs ungated (admin): throughput`,
    t.nats.gated,
    t.nats.open,
    "msg/s",
    { op: ">=", value: 0.95 },
  );
  addRow(
    "6. NATS, MQTT, sealed",
    `${mqttN.toLocaleString("en")} messages over MQTT at QoS 1 (gated, own client) vs ungated (admin): throughput`,
    t.mqtt.gated,
    t.mqtt.open,
    "msg/s",
    { op: ">=", value: 0.95 },
  );
  addRow("6. NATS, MQTT, sealed", "NATS request/reply round trip, median (gated vs ungated)", rr.gated, rr.open, "µs");
  addRow(
    "6. NATS, MQTT, sealed",
    "MQTT 5 request/response round trip (QoS 0), median (gated vs ungated)",
    mrr.gated,
    mrr.open,
    "µs",
  );
  // Sealing's own cost, in this process: seal + open of a 100-byte message against JSON encode + decode.
  const { Keyring } = await import("../agent-runtime/bus/sealed.js");
  const sealedRate: number[] = [],
    plainRate: number[] = []; // µs per message
  const body = { type: "event", data: "x".repeat(100) };
  for (let r = 0; r < 5; r++) {
    const a = new Keyring("a"),
      b = new Keyring("b");
    a.trust(b.publicKeys());
    b.trust(a.publicKeys());
    const n = 2000;
    let t0 = performance.now();
    for (let i = 0; i < n; i++) b.open(a.seal("b", body));
    sealedRate.push(((performance.now() - t0) * 1000) / n);
    t0 = performance.now();
    for (let i = 0; i < n * 50; i++) JSON.parse(JSON.stringify(body));
    plainRate.push(((performance.now() - t0) * 1000) / (n * 50));
  }
  addRow(
    "6. NATS, MQTT, sealed",
    "sealed messages: seal + open of one message (one core) vs plain JSON encode + decode",
    sealedRate,
    plainRate,
    "µs",
    undefined,
    1,
  );
  const sizes = (() => {
    const a = new Keyring("a"),
      b = new Keyring("b");
    a.trust(b.publicKeys());
    return { sealed: JSON.stringify(a.seal("b", body)).length, plain: JSON.stringify(body).length };
  })();
  rows.push({
    section: "6. NATS, MQTT, sealed",
    metric: "size on the wire of a 100-byte message",
    airlock: `${sizes.sealed} B sealed`,
    baseline: `${sizes.plain} B plain`,
    ratio: sizes.sealed / sizes.plain,
    paired: "",
  });
}

// ---------- 2 & 4. many at once ---------------------------------------------------------------

async function many(agentImage: string, n: number, reps: number, section: string, target?: Row["target"]) {
  log(`${section}: ${n} agents at once`);
  const policy = definePolicy({ name: "bench-many", network: { allowedEndpoints: ["localhost:6379"] } });
  const out = await tmp();
  const plain: number[] = [],
    airlock: number[] = [],
    peakMiB: number[] = [];
  for (let i = 0; i < reps; i++) {
    await settle();
    let t = performance.now();
    await Promise.all(Array.from({ length: n }, () => plainDockerRun(agentImage)));
    plain.push(performance.now() - t);
    await settle();
    global.gc?.();
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    t = performance.now();
    const results = await Promise.all(
      Array.from({ length: n }, (_, k) =>
        runAgent({
          name: `m${k}`,
          agent: join(AGENTS, "exit.ts"),
          policy,
          outputDir: join(out, `r${i}-${k}`),
          workingDir: AGENTS,
        }),
      ),
    );
    airlock.push(performance.now() - t);
    clearInterval(sampler);
    const failed = results.filter((r) => r.status !== "succeeded");
    if (failed.length)
      throw new Error(`${failed.length} of ${n} agents did not succeed: ${failed[0]!.error ?? failed[0]!.stderr}`);
    peakMiB.push(peak / 1024 / 1024);
  }
  const a = summarize(airlock),
    b = summarize(plain);
  addRow(section, `${n} agent${n === 1 ? "" : "s"} at once: wall time`, airlock, plain, "ms", target);
  return { wall: a, plain: b, peakMiB: summarize(peakMiB) };
}

// ---------- 3. throughput and latency ---------------------------------------------------------

/** The local brokers' admin credentials: the "no rights" side of a pair uses them (a super user, no ACL checks). */
function brokerAdmins(): { redisUrl: string; kafka: { KAFKA_USERNAME: string; KAFKA_PASSWORD: string } } {
  const redis = localAdmin("redis");
  const kafka = localAdmin("kafka");
  return {
    redisUrl: `redis://${redis.user}:${encodeURIComponent(redis.password)}@localhost:${redis.port}`,
    kafka: { KAFKA_USERNAME: kafka.user, KAFKA_PASSWORD: kafka.password },
  };
}

async function createTopic(topic: string): Promise<void> {
  const { Kafka, logLevel } = await import("kafkajs");
  const { kafka } = brokerAdmins();
  const admin = new Kafka({
    clientId: "bench-admin",
    brokers: ["localhost:9092"],
    sasl: { mechanism: "scram-sha-512", username: kafka.KAFKA_USERNAME, password: kafka.KAFKA_PASSWORD },
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
}

async function throughput() {
  log("3. throughput through the gate");
  // Gated pairs get their rights from the bus section (an identity per run); the ungated baseline
  // uses the broker's admin (no ACL checks at all), so "through the gate" includes the rights' cost.
  const admins = brokerAdmins();
  const redisEnv = (run: string) => ({ BENCH_N: String(N_MESSAGES), BENCH_CHANNEL: `bench-${run}` });
  const redisBus = { redis: { publish: ["bench-*"], subscribe: ["bench-*"], keys: { write: ["bench-*"] } } };
  const redis = await prepare(
    "bench-redis",
    "localhost:6379",
    redisEnv("x"),
    ["redis-sub", "redis-pub", "rr-replier", "rr-requester"],
    redisBus,
  );
  const kafkaEnv = (run: string) => ({ BENCH_N: String(N_MESSAGES), BENCH_TOPIC: `bench-${run}` });
  const kafka = await prepare("bench-kafka", "localhost:9092", kafkaEnv("x"), ["kafka-cons", "kafka-prod"], {
    kafka: { topics: { produce: ["bench-*"], consume: ["bench-*"] }, groups: ["bench-*"] },
  });
  const openRedis = { network: "host", env: { REDIS_URL: admins.redisUrl } };
  const openKafka = { network: "host", env: { KAFKA_BROKERS: "localhost:9092", ...admins.kafka } };
  const tput = {
    redis: { gated: [] as number[], open: [] as number[] },
    kafka: { gated: [] as number[], open: [] as number[] },
  };
  const rr = {
    gated: { p50: [] as number[], p99: [] as number[] },
    open: { p50: [] as number[], p99: [] as number[] },
  };
  // Half a second per pair: short enough to be noisy on a small machine, so more pairs than elsewhere.
  const reps = Math.max(3, Math.min(REPS * 3, 15));
  for (let i = 0; i < reps; i++) {
    // Alternate which goes first: the broker's state (JIT, page cache, log segments) must not favour either side.
    for (const gated of i % 2 === 0 ? [true, false] : [false, true]) {
      const key = gated ? "gated" : "open";
      const id = `${Date.now()}-${i}-${key}`;
      const r = await pair(redis, gated, "redis-sub", "redis-pub", redisEnv(id), openRedis);
      tput.redis[key].push(msgPerSecond(r));
      await createTopic(`bench-${id}`);
      const k = await pair(kafka, gated, "kafka-cons", "kafka-prod", kafkaEnv(id), openKafka);
      tput.kafka[key].push(msgPerSecond(k));
      const q = await pair(redis, gated, "rr-replier", "rr-requester", { ...redisEnv(id), BENCH_N: "2000" }, openRedis);
      const rtts = q.producer.rtts as number[];
      rr[key].p50.push(percentile(rtts, 50));
      rr[key].p99.push(percentile(rtts, 99));
    }
    log(
      `  rep ${i + 1}/${reps}: redis ${tput.redis.gated.at(-1)!.toFixed(0)} vs ${tput.redis.open.at(-1)!.toFixed(0)} msg/s, kafka ${tput.kafka.gated.at(-1)!.toFixed(0)} vs ${tput.kafka.open.at(-1)!.toFixed(0)} msg/s`,
    );
  }
  for (const broker of ["redis", "kafka"] as const) {
    addRow(
      "3. through the gate",
      `${N_MESSAGES.toLocaleString("en")} messages over ${broker === "redis" ? "Redis pub/sub" : "Kafka"}: throughput`,
      tput[broker].gated,
      tput[broker].open,
      "msg/s",
      { op: ">=", value: 0.95 },
    );
  }
  for (const p of ["p50", "p99"] as const) {
    addRow(
      "3. through the gate",
      `Redis request/reply round trip, ${p === "p50" ? "median" : "p99"}`,
      rr.gated[p],
      rr.open[p],
      "µs",
    );
  }
  await bridgeReference(redisEnv);
  await rightsReference(redisEnv, redisBus, admins.redisUrl);
}

/**
 * The rights' own cost: the same gated pair, once with an identity that has only the policy's
 * rights (ACL checks on every command), once with the broker's admin (none).
 */
async function rightsReference(
  redisEnv: (run: string) => Record<string, string>,
  bus: PolicyInput["bus"],
  adminUrl: string,
): Promise<void> {
  const withRights = await prepare("bench-rights", "localhost:6379", redisEnv("x"), ["redis-sub", "redis-pub"], bus);
  const asAdmin = await prepare("bench-admin", "localhost:6379", { ...redisEnv("x"), REDIS_URL: adminUrl }, [
    "redis-sub",
    "redis-pub",
  ]);
  const rights: number[] = [],
    admin: number[] = [];
  const reps = Math.max(3, Math.min(REPS * 2 - 1, 9));
  for (let i = 0; i < reps; i++) {
    for (const r of i % 2 === 0 ? [true, false] : [false, true]) {
      const id = `${Date.now()}-${i}-rights-${r}`;
      const res = r
        ? await pair(withRights, true, "redis-sub", "redis-pub", redisEnv(id))
        : await pair(asAdmin, true, "redis-sub", "redis-pub", { ...redisEnv(id), REDIS_URL: adminUrl });
      (r ? rights : admin).push(msgPerSecond(res));
    }
  }
  addRow(
    "5. bus rights",
    "100,000 messages over Redis pub/sub through the gate: the run's own identity vs the broker's admin",
    rights,
    admin,
    "msg/s",
    { op: ">=", value: 0.97 },
  );
}

/** Minting and revoking one identity per broker, and what that adds to a run's start-to-exit time. */
async function busRights(): Promise<void> {
  log("5. bus rights");
  const grants: [string, PolicyInput][] = [
    [
      "Redis",
      {
        name: "bench-mint-redis",
        network: { allowedEndpoints: ["localhost:6379"] },
        bus: { redis: { keys: { write: ["bench:{run}:*"] }, publish: ["bench:{run}"] } },
      },
    ],
    [
      "RabbitMQ",
      {
        name: "bench-mint-rabbitmq",
        network: { allowedEndpoints: ["localhost:5672"] },
        bus: { rabbitmq: { queues: { publish: ["bench.{run}"], consume: ["bench.{run}"] } } },
      },
    ],
    [
      "Kafka",
      {
        name: "bench-mint-kafka",
        network: { allowedEndpoints: ["localhost:9092"] },
        bus: { kafka: { topics: { produce: ["bench-{run}"], consume: ["bench-{run}"] }, groups: ["bench-{run}"] } },
      },
    ],
  ];
  const reps = Math.max(5, REPS * 2);
  for (const [label, input] of grants) {
    const policy = definePolicy(input);
    const mint: number[] = [],
      revoke: number[] = [];
    for (let i = 0; i < reps + 1; i++) {
      const runId = `bench-${i}-${Date.now()}`;
      let t = performance.now();
      const rights = await openBusRights({
        policy,
        runId,
        run: runId,
        expiresAt: Date.now() + 60_000,
        requireRights: true,
      });
      const m = performance.now() - t;
      t = performance.now();
      await rights.revoke();
      if (i > 0) mint.push(m), revoke.push(performance.now() - t); // the first pays for connections and the sweep
    }
    const s = (xs: number[]) => summarize(xs);
    rows.push({
      section: "5. bus rights",
      metric: `${label}: mint / revoke one identity`,
      airlock: fmt(s(mint), "ms", 1),
      baseline: fmt(s(revoke), "ms", 1),
      ratio: s(mint).median / Math.max(s(revoke).median, 1e-9),
      paired: "(baseline column: revoke)",
    });
  }
  const exit = join(AGENTS, "exit.ts");
  const out = await tmp();
  for (const [label, input] of grants) {
    const withRights = definePolicy(input);
    const without = definePolicy({ name: `${input.name}-none`, network: input.network! });
    await runAgent({ agent: exit, policy: withRights, outputDir: join(out, "warm") });
    const a: number[] = [],
      b: number[] = [];
    for (let i = 0; i < REPS; i++) {
      for (const r of i % 2 === 0 ? [true, false] : [false, true]) {
        await settle();
        const t = performance.now();
        const res = await runAgent({
          agent: exit,
          policy: r ? withRights : without,
          outputDir: join(out, `${label}-${i}-${r}`),
        });
        if (res.status !== "succeeded") throw new Error(`${label}: ${res.status} ${res.error ?? ""}`);
        (r ? a : b).push(performance.now() - t);
      }
    }
    addRow(
      "5. bus rights",
      `${label}: one agent's start to exit, with its own identity vs without bus rights (same gate)`,
      a,
      b,
      "ms",
    );
  }
}

/**
 * Where the time goes: the baseline above has no network namespace at all (host network). Here both
 * sides are containers on a bridge with the same limits, talking to a Redis this bench starts on the
 * host's loopback and on the gateway of a bridge of its own (the host accepts nothing from airlock's
 * bridge but what a running agent's policy allows): the gated one through its rules and the kernel
 * DNAT to localhost, the ungated one straight to its gateway. The ratio is the gate's own cost.
 */
async function bridgeReference(redisEnv: (run: string) => Record<string, string>): Promise<void> {
  await ensureNetwork(docker);
  const refNet = await referenceBridge();
  const gateway = refNet.gateway;
  const port = await freePort(gateway);
  const server = execa(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      `127.0.0.1 ${gateway}`,
      "--protected-mode",
      "no",
      "--save",
      "",
      "--appendonly",
      "no",
    ],
    { reject: false },
  );
  try {
    for (
      let i = 0;
      (await execa("redis-cli", ["-p", String(port), "ping"], { reject: false })).stdout !== "PONG";
      i++
    ) {
      if (i > 50) throw new Error("the reference Redis did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    const env = (run: string) => ({ ...redisEnv(run), REDIS_URL: `redis://localhost:${port}` });
    const p = await prepare("bench-redis-bridge", `localhost:${port}`, env("x"), ["redis-sub", "redis-pub"]);
    const gated: number[] = [],
      open: number[] = [];
    const reps = Math.max(3, Math.min(REPS * 2 - 1, 9));
    for (let i = 0; i < reps; i++) {
      for (const g of i % 2 === 0 ? [true, false] : [false, true]) {
        const id = `${Date.now()}-${i}-bridge-${g}`;
        const r = await pair(p, g, "redis-sub", "redis-pub", env(id), {
          network: refNet.name,
          env: { REDIS_URL: `redis://${gateway}:${port}` },
        });
        (g ? gated : open).push(msgPerSecond(r));
      }
    }
    addRow(
      "3. through the gate",
      "100,000 messages over Redis pub/sub, both on airlock's bridge (the gate's own cost)",
      gated,
      open,
      "msg/s",
    );
  } finally {
    server.kill();
    await server;
  }
}

/** A bridge like airlock's (inter-container traffic off), for the ungated reference pair. */
async function referenceBridge(): Promise<{ name: string; gateway: string }> {
  const name = "airlock-bench-reference";
  const inspect = async () =>
    ((await docker.getNetwork(name).inspect()).IPAM?.Config?.[0] as { Gateway?: string } | undefined)?.Gateway;
  let gateway = await inspect().catch(() => undefined);
  if (!gateway) {
    await docker.createNetwork({
      Name: name,
      Driver: "bridge",
      Labels: { "dev.airlock.managed": "true", "dev.airlock.kind": "bench-network" },
      Options: { "com.docker.network.bridge.enable_icc": "false", "com.docker.network.bridge.name": "airlockbench0" },
    });
    gateway = await inspect();
  }
  return { name, gateway: gateway! };
}

async function freePort(host: string): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = createServer().once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

// ---------- report ----------------------------------------------------------------------------

function verdict(r: Row): string {
  if (!r.target) return "";
  const t = r.target;
  const v = t.absolute ? t.absolute.actual : r.ratio;
  const ok = t.op === "<=" ? v <= t.value : t.op === "<" ? v < t.value : v >= t.value;
  return `${ok ? "✔" : "✖"} target ${t.absolute ? `${t.absolute.of} ` : ""}${t.op} ${t.value}${t.absolute ? ` ${t.absolute.unit}` : "×"}`;
}

function table(markdown: boolean): string {
  const header = [
    "",
    "metric",
    "airlock (min / median / max)",
    "baseline (min / median / max)",
    "ratio",
    "target",
    "paired ratios (min / median / max)",
  ];
  const body = rows.map((r) => [
    r.section,
    r.metric,
    r.airlock,
    r.baseline,
    `${r.ratio.toFixed(2)}×`,
    verdict(r),
    r.paired,
  ]);
  if (markdown)
    return [
      `| ${header.join(" | ")} |`,
      `|${header.map(() => "---").join("|")}|`,
      ...body.map((b) => `| ${b.join(" | ")} |`),
    ].join("\n");
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [header, ...body].map((cells) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n");
}

async function main() {
  const started = Date.now();
  const images = await ensureImages(docker);
  const version = await docker.version();
  // BENCH_ONLY=3 (or "1,3") runs only those sections, for profiling; results.md is written by full runs only.
  const only = new Set((process.env.BENCH_ONLY ?? "1,2,3,4,5,6,7,8,9,10").split(","));
  if (only.has("1")) {
    await coldStart(images.agent);
    await pythonColdStart((await ensurePythonImage(docker, images)).id);
  }
  const twenty =
    only.has("2") || only.has("4")
      ? await many(images.agent, 20, Math.max(3, Math.min(REPS, 5)), "2. many at once", { op: "<=", value: 1.3 })
      : undefined;
  if (only.has("3")) await throughput();
  if (only.has("5")) await busRights();
  if (only.has("6")) await natsAndMqtt();
  const scaling: [number, Awaited<ReturnType<typeof many>>][] = [];
  if (only.has("4"))
    for (const n of [1, 5, 20, 50])
      scaling.push([n, n === 20 ? twenty! : await many(images.agent, n, 3, "4. scaling")]);
  if (only.has("10")) await cliSection({ addRow, log, reps: REPS });
  if (only.has("9")) await outputSection(images.agent, { addRow, log, reps: REPS, tmp, settle });
  const warmLine = only.has("8")
    ? await warmSection(images.agent, { addRow, addFigureRow, log, reps: REPS, tmp, plainDockerRun, settle })
    : "";
  // Last: a local cluster's kubelet changes the host's netfilter while it runs.
  if (only.has("7")) await kubernetesSection(images, addRow, log, REPS, await tmp());
  // RSS never shrinks, so per-agent memory is the slope of the peak between the smallest and largest run.
  const [lo, hi] = [scaling[0], scaling[scaling.length - 1]];
  const slope = lo && hi && hi[0] > lo[0] ? (hi[1].peakMiB.median - lo[1].peakMiB.median) / (hi[0] - lo[0]) : 0;
  const mem = `${scaling.map(([n, s]) => `${n}: ${s.peakMiB.median.toFixed(0)} MiB`).join(", ")} peak RSS; ≈ ${Math.max(0, slope).toFixed(2)} MiB per added agent`;
  const growth = scaling
    .map(
      ([n, s]) => `${n}: ${(s.wall.median / 1000).toFixed(2)} s (docker run ${(s.plain.median / 1000).toFixed(2)} s)`,
    )
    .join(", ");
  const text = table(false);
  console.log(text);
  console.log(`\nrunner memory (median): ${mem}\nwall time by number of agents (median): ${growth}`);
  const md = [
    "# airlock benchmark",
    "",
    `Measured by \`npm run bench\` on ${new Date().toISOString()} — ${process.env.BENCH_MACHINE ?? "2 cores, 24 GiB"}, Docker ${version.Version}, Node ${process.version}, ${REPS} repetitions (${Math.max(3, Math.min(REPS * 3, 15))} for the throughput pairs, 3 for the slowest sections), baselines measured in the same run on the same image, interleaved with airlock's. "ratio" is airlock's median over the baseline's median (the target is checked on it); "paired ratios" are each repetition's airlock figure over the baseline figure measured right next to it, which shows how much of a difference is this machine's noise.`,
    "",
    table(true),
    "",
    `Runner memory by number of concurrent agents (median): ${mem}.`,
    "",
    `Wall time by number of concurrent agents (median): ${growth}.`,
    "",
    warmLine,
    "",
    `Total bench time ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    "",
  ].join("\n");
  if (only.size < 10) return;
  await mkdir(packagePath("bench"), { recursive: true });
  await writeFile(packagePath("bench", "results.md"), md);
  await rm(join(tmpdir(), "airlock-bench-out"), { recursive: true, force: true });
}

await main();
