/*
 * NATS attacks, really attempted by an agent allowed (at L4) to reach airlock's local NATS with a
 * user that may publish and subscribe to its own subjects (mine.<run>.*) only. It speaks the NATS
 * protocol itself, one connection per attempt, so each -ERR the server sends is the answer to that
 * attempt. What each got goes to /output/nats-attacks.json.
 */
const net = require("net");
const fs = require("fs");

const cfg = JSON.parse(process.env.NATS_ATTACK);
const run = process.env.AIRLOCK_RUN_ID;
const url = new URL(process.env.NATS_URL);
const me = { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
const results = { identity: me.user, inbox: process.env.AIRLOCK_NATS_INBOX_PREFIX };
const save = () => fs.writeFileSync("/output/nats-attacks.json", JSON.stringify(results));
fs.writeFileSync("/output/nats-credentials.json", JSON.stringify(me));

/** Connect (with `auth`), send `ops`, then collect what the server says for `waitMs`. */
function session(auth, ops, waitMs = 400) {
  return new Promise((resolve) => {
    const s = net.connect(Number(url.port || 4222), url.hostname);
    let text = "";
    let sent = false;
    const done = () => {
      s.destroy();
      const errs = [...text.matchAll(/-ERR '([^']*)'/g)].map((m) => m[1]);
      const msgs = [...text.matchAll(/^MSG (\S+)/gm)].map((m) => m[1]);
      resolve({ errs, msgs, text });
    };
    s.setTimeout(5000, done);
    s.on("data", (d) => {
      text += d.toString();
      if (!sent && text.includes("INFO")) {
        sent = true;
        s.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, ...auth })}\r\nPING\r\n${ops.join("")}PING\r\n`);
        setTimeout(done, waitMs);
      }
    });
    s.on("error", (e) => {
      text += `socket: ${e.code}`;
      done();
    });
    s.on("close", () => setTimeout(done, 10));
  });
}

const pub = (subject, body = "ATTACK") => `PUB ${subject} ${Buffer.byteLength(body)}\r\n${body}\r\n`;
const outcome = (r) => (r.errs.length ? r.errs.join("; ") : r.msgs.length ? `received ${r.msgs.length} on ${[...new Set(r.msgs)].join(",")}` : "no error");

async function attempt(key, fn) {
  try {
    results[key] = await fn();
  } catch (e) {
    results[key] = `${e.name}: ${e.message}`;
  }
  save();
}

(async () => {
  const own = `mine.${run}.a`;
  await attempt("own-subject", async () => outcome(await session(me, [`SUB ${own} 1\r\n`, pub(own, "mine")])));
  await attempt("publish-other", async () => outcome(await session(me, [pub(`${cfg.other}.x`)])));
  // The test publishes to the other agent's subjects all through the attack: a subscription that got through would receive.
  await attempt("subscribe-other", async () => outcome(await session(me, [`SUB ${cfg.other}.> 1\r\n`], 1500)));
  await attempt("subscribe-everything", async () => outcome(await session(me, ["SUB > 1\r\n"], 1500)));
  await attempt("subscribe-all-inboxes", async () => outcome(await session(me, ["SUB _INBOX.> 1\r\n"], 1500)));
  await attempt("subscribe-other-run-inbox", async () => outcome(await session(me, [`SUB ${cfg.otherInbox}.> 1\r\n`], 1500)));
  await attempt("system-account", async () => outcome(await session(me, ["SUB $SYS.> 1\r\n", pub("$SYS.REQ.SERVER.PING")])));
  await attempt("queue-group-steal", async () => outcome(await session(me, [`SUB ${cfg.other}.work workers 1\r\n`], 1500)));
  for (const [label, auth] of [
    ["admin-empty", { user: "airlock-admin", pass: "" }],
    ["admin-guess", { user: "airlock-admin", pass: "airlock-admin" }],
    ["admin-admin", { user: "admin", pass: "admin" }],
    ["anonymous", {}],
  ]) {
    await attempt(`login:${label}`, async () => {
      const r = await session(auth, []);
      return r.errs.length ? r.errs[0] : r.text.includes("PONG") ? "logged in" : r.text.slice(0, 80);
    });
  }
})().then(() => process.exit(0));
