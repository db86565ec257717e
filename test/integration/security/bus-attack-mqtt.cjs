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

/** MQTT's length prefix and strings, written by hand: this attack is below what a client library sends. */
const varint = (n) => { const out = []; do { let b = n % 128; n = Math.floor(n / 128); if (n) b |= 128; out.push(b); } while (n); return Buffer.from(out); };
const str = (s) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]); };
const packet = (first, body) => Buffer.concat([Buffer.from([first]), varint(body.length), body]);

function forgeRefusal(topic) {
  const u = new URL(url);
  const connect = packet(0x10, Buffer.concat([str("MQTT"), Buffer.from([4, 0xc2, 0, 60]), str(clientId), str(decodeURIComponent(u.username)), str("wrong-password")]));
  const publish = packet(0x30, Buffer.concat([str(topic), Buffer.from("x")]));
  return new Promise((resolve) => {
    const s = require("net").connect(Number(u.port), u.hostname, () => s.write(Buffer.concat([connect, publish])));
    let answer = "";
    s.on("data", (d) => (answer += d.toString("hex")));
    s.on("close", () => resolve(`closed; the broker answered ${answer || "nothing"}`));
    s.on("error", () => {});
    setTimeout(() => s.destroy(), 3000);
  });
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
  // Forge a refusal: log in as itself with a wrong password and publish in the same write, before the
  // broker answers; the broker never judges that publish, so the gate's record must not list it.
  await attempt("forge-refusal", () => forgeRefusal("forged/by-agent"));
  await attempt("take-over-other-client-id", async () => (await open({ clientId: cfg.victimClientId })).connected ? "connected" : "not connected");
  await attempt("anonymous", async () => (await mqtt.connectAsync(url.replace(/\/\/[^@]*@/, "//"), { protocolVersion: 5, reconnectPeriod: 0 })).connected ? "connected" : "not connected");
  for (const [label, username, password] of [["admin-empty", "airlock-admin", ""], ["admin-guess", "airlock-admin", "airlock-admin"], ["admin-admin", "admin", "admin"]]) {
    await attempt(`login:${label}`, async () => (await mqtt.connectAsync(url.replace(/\/\/[^@]*@/, "//"), { username, password, protocolVersion: 5, reconnectPeriod: 0 })).connected ? "logged in" : "not connected");
  }
})().then(() => process.exit(0), (e) => (console.error(e), process.exit(1)));
