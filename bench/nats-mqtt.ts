/**
 * Bench section 6: NATS and MQTT pairs through the gate, and sealed messages.
 */
import { percentile } from "./stats.js";
import { addRow, rows } from "./report.js";
import { localAdmin, log, N_MESSAGES, REPS } from "./common.js";
import { msgPerSecond, pair, prepare } from "./pairs.js";

export async function natsAndMqtt(): Promise<void> {
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
