/*
 * Kafka attacks, really attempted by an agent allowed (at L4) to reach airlock's local Kafka with a
 * SCRAM user that may produce to and consume its own topic (and group) only. kafkajs comes from the
 * agent runtime in the image. What each attempt got goes to /output/kafka-attacks.json.
 */
const { Kafka, logLevel } = require("/opt/airlock/node_modules/kafkajs");
const fs = require("fs");

const cfg = JSON.parse(process.env.KAFKA_ATTACK);
const run = process.env.AIRLOCK_RUN_ID;
const own = `mine-${run}`;
const brokers = process.env.KAFKA_BROKERS.split(",");
const results = { identity: process.env.KAFKA_USERNAME };
const save = () => fs.writeFileSync("/output/kafka-attacks.json", JSON.stringify(results));
const client = (sasl) => new Kafka({ clientId: "attacker", brokers, ...(sasl ? { sasl } : {}), connectionTimeout: 3000, retry: { retries: 0 }, logLevel: logLevel.NOTHING });
const mine = client({ mechanism: "scram-sha-512", username: process.env.KAFKA_USERNAME, password: process.env.KAFKA_PASSWORD });

async function attempt(key, fn) {
  try {
    results[key] = String(await fn());
  } catch (e) {
    const inner = Array.isArray(e.errors) ? ` (${e.errors.map((x) => x.type ?? x.message).join(", ")})` : "";
    results[key] = `${e.type ?? e.name}: ${String(e.message).slice(0, 160)}${inner}`;
  }
  save();
}

async function consumeOnce(kafka, topic, groupId) {
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve("nothing within 8 s"), 8000);
      consumer.on(consumer.events.CRASH, (e) => (clearTimeout(timer), reject(e.payload.error)));
      consumer.run({ eachMessage: async ({ message }) => (clearTimeout(timer), resolve(`read: ${message.value}`)) }).catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => {});
  }
}

(async () => {
  const admin = mine.admin();
  await admin.connect();
  await attempt("own-topic", async () => {
    await admin.createTopics({ topics: [{ topic: own, numPartitions: 1 }], waitForLeaders: true });
    const producer = mine.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({ topic: own, messages: [{ value: "mine" }] });
    await producer.disconnect();
    return consumeOnce(mine, own, `mine-${run}-group`);
  });
  await attempt("list-topics", async () => {
    const topics = await admin.listTopics();
    return topics.includes(cfg.otherTopic) ? `sees ${cfg.otherTopic}` : `sees only: ${topics.filter((t) => !t.startsWith("__")).join(",")}`;
  });
  await attempt("produce-other", async () => {
    const producer = mine.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic: cfg.otherTopic, messages: [{ value: "forged" }] });
      return "produced";
    } finally {
      await producer.disconnect();
    }
  });
  await attempt("consume-other", () => consumeOnce(mine, cfg.otherTopic, `mine-${run}-group`));
  await attempt("other-group", () => consumeOnce(mine, own, cfg.otherGroup));
  await attempt("create-other", () => admin.createTopics({ topics: [{ topic: `${cfg.otherTopic}-new` }], waitForLeaders: false }).then((ok) => (ok ? "created" : "not created (exists?)")));
  await attempt("delete-other", () => admin.deleteTopics({ topics: [cfg.otherTopic], timeout: 3000 }).then(() => "deleted"));
  await attempt("delete-own", () => admin.deleteTopics({ topics: [own], timeout: 3000 }).then(() => "deleted"));
  await attempt("describe-acls", () => admin.describeAcls({ resourceType: 1, resourcePatternType: 1, operation: 1, permissionType: 1 }).then((r) => `${r.resources.length} resources`));
  await attempt("create-acl", () =>
    admin.createAcls({ acl: [{ resourceType: 2, resourceName: cfg.otherTopic, resourcePatternType: 3, principal: `User:${process.env.KAFKA_USERNAME}`, host: "*", operation: 3, permissionType: 3 }] }).then(() => "created"),
  );
  await attempt("offsets-other", () => admin.fetchTopicOffsets(cfg.otherTopic).then((o) => `offsets: ${JSON.stringify(o)}`));
  await admin.disconnect();
  for (const [user, password] of [["airlock-admin", ""], ["airlock-admin", "admin"], ["admin", "admin"]]) {
    await attempt(`login:${user}:${password || "empty"}`, async () => {
      const a = client({ mechanism: "scram-sha-512", username: user, password }).admin();
      await a.connect();
      await a.listTopics();
      await a.disconnect();
      return "logged in";
    });
  }
  await attempt("login:plaintext", async () => {
    const a = client(undefined).admin();
    await a.connect();
    await a.listTopics();
    await a.disconnect();
    return "logged in";
  });
  fs.writeFileSync("/output/kafka-credentials.json", JSON.stringify({ user: process.env.KAFKA_USERNAME, password: process.env.KAFKA_PASSWORD }));
  console.log("done");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
