/**
 * A test agent that really attempts each HTTPS (plain HTTP, DNS) request it is given (HTTPS_PROBES),
 * trusting only the test's CA (HTTPS_TEST_CA), and writes what happened to /output/https.json: the
 * body the server answered (it names itself, the SNI and the Host it saw), or the error — a TLS
 * alert's code says the egress proxy refused. Plain Node, no airlock runtime: it runs as a command,
 * in airlock's image, a derived one and a pooled sandbox alike (passed with `node -e`).
 */
const tls = require("node:tls");
const http = require("node:http");
const dns = require("node:dns/promises");
const fs = require("node:fs");

/** GET / over a new TLS connection to `connectTo` (default: the name), asking for `servername` (default: the name). */
function https(p, ca) {
  const started = Date.now();
  return new Promise((resolve) => {
    let body = "";
    let settled = false;
    const done = (outcome) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({ outcome, ms: Date.now() - started, body: body.split("\r\n\r\n").slice(1).join("").trim() });
    };
    const servername = p.servername ?? p.host;
    // systemTrust: the CAs the sandbox trusts by default (airlock's, through NODE_EXTRA_CA_CERTS), not the test's.
    const trust = p.systemTrust ? {} : { ca };
    const socket = tls.connect({ host: p.connectTo ?? p.host, port: p.port, ...trust, servername, checkServerIdentity: () => undefined });
    socket.setTimeout(8000, () => done("TIMEOUT"));
    socket.on("secureConnect", () => {
      // The certificate must be the test CA's, for the name asked (checked here, as a client would).
      const err = servername ? tls.checkServerIdentity(servername, socket.getPeerCertificate()) : undefined;
      if (!socket.authorized || err) return done(`untrusted: ${socket.authorizationError ?? err.message}`);
      socket.write(`GET / HTTP/1.1\r\nHost: ${p.hostHeader ?? `${p.host}:${p.port}`}\r\nConnection: close\r\n\r\n`);
    });
    socket.on("data", (d) => {
      body += d.toString();
    });
    socket.on("end", () => done(body.startsWith("HTTP/1.1 ") ? `HTTP ${body.slice(9, 12)}` : "closed"));
    socket.on("error", (err) => done(err.code ?? err.message));
  });
}

function plainHttp(p) {
  const started = Date.now();
  return new Promise((resolve) => {
    const req = http.request({ host: p.host, port: p.port, path: "/", agent: false, timeout: 8000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve({ outcome: `HTTP ${res.statusCode}`, ms: Date.now() - started, body: body.trim() }));
    });
    req.on("timeout", () => req.destroy(new Error("TIMEOUT")));
    req.on("error", (err) => resolve({ outcome: err.code ?? err.message, ms: Date.now() - started }));
    req.end();
  });
}

async function lookup(p) {
  const started = Date.now();
  try {
    const a = await dns.lookup(p.name, { family: 4 });
    return { outcome: `resolved ${a.address}`, ms: Date.now() - started };
  } catch (err) {
    return { outcome: err.code ?? "error", ms: Date.now() - started };
  }
}

(async () => {
  const probes = JSON.parse(process.env.HTTPS_PROBES ?? "[]");
  const ca = process.env.HTTPS_TEST_CA ?? "";
  const results = {};
  for (const p of probes)
    results[p.id] = p.kind === "https" ? await https(p, ca) : p.kind === "http" ? await plainHttp(p) : await lookup(p);
  fs.writeFileSync("/output/https.json", JSON.stringify(results));
  if (process.env.HTTPS_LOOK_AROUND) lookAround();
})();

/**
 * Everything this agent can read that could hold a secret of the runner's — its environment, every
 * process's environment and command line it can read, and the readable files of the places a
 * runner could leave one — into /output/seen.txt, for the test to search (bounded: 64 MiB).
 */
function lookAround() {
  const out = fs.openSync("/output/seen.txt", "w");
  let budget = 64 * 1024 * 1024;
  const put = (label, text) => {
    if (budget <= 0) return;
    const chunk = `== ${label}\n${text}\n`.slice(0, budget);
    budget -= chunk.length;
    fs.writeSync(out, chunk);
  };
  put("env", JSON.stringify(process.env));
  for (const pid of fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n)))
    for (const f of ["environ", "cmdline"]) {
      try {
        put(`/proc/${pid}/${f}`, fs.readFileSync(`/proc/${pid}/${f}`, "latin1"));
      } catch {}
    }
  const isFile = (path) => {
    try {
      return fs.statSync(path).isFile();
    } catch {
      return false;
    }
  };
  const walk = (dir, depth) => {
    let entries = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = `${dir === "/" ? "" : dir}/${e.name}`;
      if (e.isDirectory() && depth < 8 && !["proc", "sys", "dev", "output", "usr"].includes(e.name)) walk(path, depth + 1);
      // A link to a file is read too (a Pod's mounted ConfigMap files are links); links to folders are not followed.
      else if (e.isFile() || (e.isSymbolicLink() && isFile(path))) {
        try {
          const st = fs.statSync(path);
          if (st.size < 4 * 1024 * 1024) put(path, fs.readFileSync(path, "latin1"));
        } catch {}
      }
    }
  };
  walk("/", 0);
  fs.closeSync(out);
}
