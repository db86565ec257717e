/*
 * RabbitMQ attacks, really attempted by an agent allowed (at L4) to reach airlock's local RabbitMQ
 * with an identity that may publish to and consume from its own queue only. amqplib comes from the
 * agent runtime in the image. What each attempt got goes to /output/amqp-attacks.json.
 */
const amqp = require("/opt/airlock/node_modules/amqplib");
const fs = require("fs");

const cfg = JSON.parse(process.env.AMQP_ATTACK);
const url = new URL(process.env.AMQP_URL);
const base = `amqp://${url.hostname}:${url.port || 5672}`;
const own = `mine:${process.env.AIRLOCK_RUN_ID}`;
// A queue the policy lets it only publish to.
const feed = `feed:${process.env.AIRLOCK_RUN_ID}`;
const exchange = process.env.AIRLOCK_AMQP_EXCHANGE;
const results = { identity: decodeURIComponent(url.username) };
const save = () => fs.writeFileSync("/output/amqp-attacks.json", JSON.stringify(results));

async function attempt(key, fn) {
  try {
    results[key] = String(await fn());
  } catch (e) {
    results[key] = e instanceof Error ? `${e.name}: ${String(e.message).slice(0, 160)}` : `rejected: ${JSON.stringify(e ?? null).slice(0, 160)}`;
  }
  save();
}

(async () => {
  const conn = await amqp.connect(process.env.AMQP_URL);
  conn.on("error", () => {});
  const channel = async () => {
    const ch = await conn.createConfirmChannel();
    ch.on("error", () => {});
    return ch;
  };
  await attempt("own-queue", async () => {
    const ch = await channel();
    // Declared by the runner: checked, never configured.
    await ch.checkQueue(own);
    ch.publish(exchange, own, Buffer.from("mine"), { mandatory: true });
    await ch.waitForConfirms();
    const got = await ch.get(own, { noAck: true });
    return got ? got.content.toString() : "nothing";
  });
  await attempt("declare-other", async () => (await channel()).assertQueue(cfg.otherQueue + ".new", { durable: true }).then(() => "declared"));
  await attempt("get-other", async () => {
    const m = await (await channel()).get(cfg.otherQueue, { noAck: true });
    return m ? `read: ${m.content}` : "empty";
  });
  await attempt("consume-other", async () => (await channel()).consume(cfg.otherQueue, () => {}).then(() => "consuming"));
  await attempt("publish-default-exchange", async () => {
    const ch = await channel();
    ch.sendToQueue(cfg.otherQueue, Buffer.from("forged"));
    await ch.waitForConfirms();
    return "published";
  });
  await attempt("publish-own-exchange-other-key", async () => {
    const ch = await channel();
    let returned = false;
    ch.on("return", () => (returned = true));
    ch.publish(exchange, cfg.otherQueue, Buffer.from("forged"), { mandatory: true });
    await ch.waitForConfirms();
    return returned ? "returned unroutable" : "routed";
  });
  await attempt("bind-other", async () => (await channel()).bindQueue(cfg.otherQueue, exchange, cfg.otherQueue).then(() => "bound"));
  await attempt("purge-other", async () => (await channel()).purgeQueue(cfg.otherQueue).then(() => "purged"));
  await attempt("delete-other", async () => (await channel()).deleteQueue(cfg.otherQueue).then(() => "deleted"));
  // Rights that would come along with another: configure on what it only publishes to, or consumes.
  await attempt("delete-publish-only", async () => (await channel()).deleteQueue(feed).then(() => "deleted"));
  await attempt("redeclare-publish-only", async () => (await channel()).assertQueue(feed, { durable: true, arguments: { "x-max-length": 0 } }).then(() => "redeclared"));
  await attempt("delete-consumed", async () => (await channel()).deleteQueue(own).then(() => "deleted"));
  await attempt("redeclare-consumed", async () => (await channel()).assertQueue(own, { durable: false, arguments: { "x-message-ttl": 1 } }).then(() => "redeclared"));
  await attempt("declare-amq-exchange", async () => (await channel()).assertExchange("amq.airlock-test", "topic").then(() => "declared"));
  await attempt("publish-amq-topic", async () => {
    const ch = await channel();
    ch.publish("amq.topic", "x", Buffer.from("forged"));
    await ch.waitForConfirms();
    return "published";
  });
  for (const [user, password] of [["guest", "guest"], ["airlock-admin", ""], ["airlock-admin", "admin"], ["admin", "admin"]]) {
    await attempt(`login:${user}:${password || "empty"}`, async () => {
      const c = await amqp.connect(`amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${url.hostname}:${url.port || 5672}`);
      await c.close();
      return "logged in";
    });
  }
  await attempt("login:anonymous", async () => (await amqp.connect(base)).close().then(() => "logged in"));
  fs.writeFileSync("/output/amqp-credentials.json", JSON.stringify({ url: process.env.AMQP_URL.replace("@localhost", "@127.0.0.1") }));
  await conn.close().catch(() => {});
  console.log("done");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
