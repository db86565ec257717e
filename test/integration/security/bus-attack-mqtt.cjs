/*
 * MQTT attacks, really attempted by an agent allowed (at L4) to reach airlock's local Mosquitto with
 * a client that may publish and subscribe to its own topics (mine/<run>/*) only. mqtt.js comes from
 * the agent runtime in the image. What each attempt got goes to /output/mqtt-attacks.json.
 */
const mqtt = require("/opt/airlock/node_modules/mqtt");
const fs = require("fs");

const cfg = JSON.parse(process.env.MQTT_ATTACK);
const run = process.env.AIRLOCK_RUN_ID;
const url = process.env.MQTT_URL;
const clientId = process.env.MQTT_CLIENT_ID;
const results = { identity: clientId };
const save = () => fs.writeFileSync("/output/mqtt-attacks.json", JSON.stringify(results));
fs.writeFileSync("/output/mqtt-credentials.json", JSON.stringify({ url: url.replace(/@.*/, "@").replace(/^mqtt:\/\//, ""), clientId, password: decodeURIComponent(new URL(url).password) }));

const open = (options = {}) => mqtt.connectAsync(url, { clientId, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 4000, ...options });
const reason = (e) => `${e.message}${e.code !== undefined ? ` (${e.code})` : ""}`;

async function attempt(key, fn) {
  try {
    results[key] = String(await fn());
  } catch (e) {
    results[key] = reason(e);
  }
  save();
}

async function subscribeFor(c, topic, ms) {
  let got = 0;
  c.on("message", (t) => t !== `mine/${run}/a` && got++);
  const granted = await c.subscribeAsync(topic, { qos: 1 }).then((g) => g.map((x) => x.qos).join(","), (e) => `refused: ${e.packet?.granted?.join(",") ?? reason(e)}`);
  await new Promise((r) => setTimeout(r, ms));
  return `${granted}; received ${got}`;
}

(async () => {
  const c = await open();
  await attempt("own-topic", async () => {
    await c.subscribeAsync(`mine/${run}/a`, { qos: 1 });
    const got = new Promise((r) => c.once("message", (t, m) => r(`${t}: ${m}`)));
    await c.publishAsync(`mine/${run}/a`, "mine", { qos: 1 });
    return `read ${await got}`;
  });
  await attempt("publish-other", async () => (await c.publishAsync(`${cfg.other}/x`, "ATTACK", { qos: 1 }), "published"));
  await attempt("retain-over-other-card", async () => (await c.publishAsync(cfg.card, JSON.stringify({ name: "impostor" }), { qos: 1, retain: true }), "published"));
  await attempt("clear-other-card", async () => (await c.publishAsync(cfg.card, "", { qos: 1, retain: true }), "published"));
  await attempt("dynsec-control", async () => (await c.publishAsync("$CONTROL/dynamic-security/v1", JSON.stringify({ commands: [{ command: "createClient", username: `intruder-${run}`, password: "x" }] }), { qos: 1 }), "published"));
  for (const [key, topic] of [["subscribe-other", `${cfg.other}/#`], ["subscribe-everything", "#"], ["subscribe-plus", "+/+/+"], ["subscribe-sys", "$SYS/#"], ["subscribe-control", "$CONTROL/#"]]) {
    const s = await open({ clientId });
    await attempt(key, () => subscribeFor(s, topic, 1200));
    await s.endAsync().catch(() => {});
  }
  await c.endAsync().catch(() => {});
  // MQTT 3.1.1 has no reason codes: a refused publish is dropped without a word; the test's watcher says whether it arrived.
  await attempt("publish-other-v311", async () => {
    const old = await open({ protocolVersion: 4 });
    await old.publishAsync(`${cfg.other}/v311`, "ATTACK", { qos: 1 });
    await old.endAsync();
    return "no error (3.1.1 cannot say)";
  });
  await attempt("take-over-other-client-id", async () => (await open({ clientId: cfg.victimClientId })).connected ? "connected" : "not connected");
  await attempt("anonymous", async () => (await mqtt.connectAsync(url.replace(/\/\/[^@]*@/, "//"), { protocolVersion: 5, reconnectPeriod: 0 })).connected ? "connected" : "not connected");
  for (const [label, username, password] of [["admin-empty", "airlock-admin", ""], ["admin-guess", "airlock-admin", "airlock-admin"], ["admin-admin", "admin", "admin"]]) {
    await attempt(`login:${label}`, async () => (await mqtt.connectAsync(url.replace(/\/\/[^@]*@/, "//"), { username, password, protocolVersion: 5, reconnectPeriod: 0 })).connected ? "logged in" : "not connected");
  }
})().then(() => process.exit(0), (e) => (console.error(e), process.exit(1)));
