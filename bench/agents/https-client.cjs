/**
 * The bench's HTTPS client (section 11), the same script with and without airlock: BENCH_HTTPS says
 * what to measure against https://BENCH_HOST:BENCH_PORT (connecting to BENCH_CONNECT when set, the
 * baseline's direct path; trusting BENCH_CA when set, else the sandbox's defaults). Prints one JSON line.
 *   ttfb     BENCH_N small requests, each on a new TLS connection: ms to the first byte of the answer
 *   download GET /big: MB/s
 *   streams  BENCH_STREAMS concurrent server-sent event streams: how late each event arrives against the pace it was sent at (ms)
 */
const https = require("node:https");

const host = process.env.BENCH_HOST;
const port = Number(process.env.BENCH_PORT);
const ca = process.env.BENCH_CA || undefined;
const agent = new https.Agent({ keepAlive: false, maxSockets: 1000 });

function get(path) {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host,
        port,
        path,
        servername: host,
        agent,
        ...(ca ? { ca } : {}),
        ...(process.env.BENCH_CONNECT
          ? { lookup: (_h, o, cb) => (o.all ? cb(null, [{ address: process.env.BENCH_CONNECT, family: 4 }]) : cb(null, process.env.BENCH_CONNECT, 4)) }
          : {}),
      },
      (res) => resolve({ res, started }),
    );
    req.on("error", reject);
    req.end();
  });
}

async function ttfb(n) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const { res, started } = await get("/small");
    await new Promise((resolve) => {
      res.once("data", () => ms.push(performance.now() - started));
      res.on("end", resolve);
      res.resume();
    });
  }
  return { ms };
}

async function download() {
  const { res, started } = await get("/big");
  let bytes = 0;
  res.on("data", (d) => {
    bytes += d.length;
  });
  await new Promise((r) => res.on("end", r));
  return { mbPerSecond: bytes / 1e6 / ((performance.now() - started) / 1000), bytes };
}

/**
 * How late each event arrives against the pace it was sent at, per stream: (arrival − the stream's
 * first arrival) − (send time − the first event's send time). Connection setup (200 TLS sessions at
 * once) is not in it; an event held back (buffered, stalled) is.
 */
async function streams(count) {
  const late = [];
  let events = 0;
  await Promise.all(
    Array.from({ length: count }, async () => {
      const { res } = await get("/sse");
      let buffered = "";
      let first;
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        buffered += chunk;
        const parts = buffered.split("\n\n");
        buffered = parts.pop();
        for (const p of parts) {
          const sent = Number(p.replace(/^data: /, ""));
          if (!sent) continue;
          const now = Date.now();
          first ??= { sent, now };
          late.push(now - first.now - (sent - first.sent));
          events++;
        }
      });
      await new Promise((r) => res.on("end", r));
    }),
  );
  late.sort((a, b) => a - b);
  return { events, p50: late[Math.floor(late.length * 0.5)], p99: late[Math.floor(late.length * 0.99)], max: late.at(-1) };
}

(async () => {
  const what = process.env.BENCH_HTTPS;
  const out =
    what === "ttfb" ? await ttfb(Number(process.env.BENCH_N ?? 30)) : what === "download" ? await download() : await streams(Number(process.env.BENCH_STREAMS ?? 200));
  console.log(`BENCH ${JSON.stringify(out)}`);
})();
