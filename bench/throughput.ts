/**
 * Bench section 3: messages through the gate (Redis pub/sub, Kafka) against the same pair on an
 * unrestricted network, and Redis request/reply round trips.
 */
import { percentile } from "./stats.js";
import { addRow } from "./report.js";
import { localAdmin, log, N_MESSAGES, REPS } from "./common.js";
import { msgPerSecond, pair, prepare } from "./pairs.js";
import { bridgeReference, rightsReference } from "./bus-rights.js";

/** The local brokers' admin credentials: the "no rights" side of a pair uses them (a super user, no ACL checks). */
export function brokerAdmins(): { redisUrl: string; kafka: { KAFKA_USERNAME: string; KAFKA_PASSWORD: string } } {
  const redis = localAdmin("redis");
  const kafka = localAdmin("kafka");
  return {
    redisUrl: `redis://${redis.user}:${encodeURIComponent(redis.password)}@localhost:${redis.port}`,
    kafka: { KAFKA_USERNAME: kafka.user, KAFKA_PASSWORD: kafka.password },
  };
}

export async function createTopic(topic: string): Promise<void> {
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

export async function throughput() {
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
