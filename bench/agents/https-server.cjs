/**
 * The bench's HTTPS service (section 11), in a process of its own as a real service would be (not in
 * the runner's event loop): /small, /big (100 MB), /sse (20 events 50 ms apart, each its send time).
 * Key and certificate from BENCH_KEY / BENCH_CERT; listens on 127.0.0.2 and prints its port.
 */
const https = require("node:https");
const BIG = 100 * 1024 * 1024;
const CHUNK = Buffer.alloc(1024 * 1024, 120);
const server = https.createServer({ key: process.env.BENCH_KEY, cert: process.env.BENCH_CERT }, (req, res) => {
  if (req.url === "/big") {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BIG });
    let sent = 0;
    const more = () => {
      while (sent < BIG) {
        sent += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once("drain", more);
      }
      res.end();
    };
    return more();
  }
  if (req.url === "/sse") {
    res.writeHead(200, { "content-type": "text/event-stream" });
    let n = 0;
    const tick = setInterval(() => {
      res.write(`data: ${Date.now()}\n\n`);
      if (++n === 20) clearInterval(tick), res.end();
    }, 50);
    return;
  }
  res.end("ok");
});
server.listen(0, "127.0.0.2", () => console.log(`PORT ${server.address().port}`));
