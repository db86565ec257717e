/**
 * Bench section 11: HTTPS services by name through the gate's egress proxy, against the same client
 * script talking to the same server without airlock (a plain `docker run` on the host's network,
 * connecting straight to the server's address), in the same run. Checked by name (SNI, pass-through)
 * and terminated at the gate (a header added): time to the first byte of a small request on a new
 * connection, a 100 MB download, and 200 concurrent streamed answers (server-sent events, 20 each).
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { execa } from "execa";
import { definePolicy } from "../runner/index.js";
import { defaultRunner } from "../runner/internal.js";
import { testChain } from "../test/integration/tls-servers.js";
import { AGENTS, log, settle, tmp } from "./common.js";
import type { addRow as AddRow, addFigureRow as AddFigureRow } from "./report.js";
import { percentile } from "./stats.js";

const CLIENT = readFileSync(join(AGENTS, "https-client.cjs"), "utf8");
const NAME = "api.bench.test";
const BIG = 100 * 1024 * 1024;
const CHUNK = Buffer.alloc(1024 * 1024, 120);

function server(chain: { key: string; cert: string }): Server {
  return createServer({ key: chain.key, cert: chain.cert }, (req, res) => {
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
}

interface Figures {
  ms?: number[];
  mbPerSecond?: number;
  events?: number;
  p99?: number;
}

export async function httpsSection(
  image: string,
  ctx: { addRow: typeof AddRow; addFigureRow: typeof AddFigureRow; reps: number },
): Promise<void> {
  log("11. HTTPS by name");
  const chain = testChain([NAME]);
  const srv = server(chain);
  await new Promise<void>((r) => srv.listen(0, "127.0.0.2", r));
  const port = (srv.address() as AddressInfo).port;
  const env = (what: string, extra: Record<string, string> = {}) => ({
    BENCH_HTTPS: what,
    BENCH_HOST: NAME,
    BENCH_PORT: String(port),
    BENCH_N: "30",
    BENCH_STREAMS: "200",
    ...extra,
  });
  const parse = (stdout: string): Figures => JSON.parse(/^BENCH (.*)$/m.exec(stdout)![1]!) as Figures;
  const baseline = async (what: string) => {
    const e = env(what, { BENCH_CA: chain.ca, BENCH_CONNECT: "127.0.0.2" });
    const r = await execa("docker", [
      "run",
      "--rm",
      "--network",
      "host",
      "--user",
      "10001:10001",
      ...Object.entries(e).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
      "--entrypoint",
      "node",
      image,
      "-e",
      CLIENT,
    ]);
    return parse(r.stdout);
  };
  const gated = async (what: string, terminated: boolean) => {
    const policy = definePolicy({
      name: "bench-https",
      network: {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
        https: [
          terminated ? { host: `${NAME}:${port}`, headers: { "X-Bench-Token": "${BENCH_TOKEN}" } } : `${NAME}:${port}`,
        ],
      },
      env: { set: env(what, terminated ? {} : { BENCH_CA: chain.ca }) },
      timeoutSeconds: 300,
      resources: { memory: "1g", cpus: 1 },
    });
    const r = await defaultRunner().runAgent({
      command: ["node", "-e", CLIENT],
      policy,
      outputDir: join(await tmp(), "out"),
      resolver: async () => ["127.0.0.2"],
      upstreamCa: chain.ca,
      env: { BENCH_TOKEN: "bench" },
    });
    if (r.status !== "succeeded") throw new Error(`bench-https: ${r.status} ${r.error ?? r.stderr}`);
    return parse(r.stdout);
  };
  const modes = [
    { label: "checked by name (SNI)", terminated: false, ttfb: 1.15 },
    { label: "terminated, header added", terminated: true, ttfb: 1.3 },
  ];
  try {
    for (const mode of modes) {
      const ttfb = { a: [] as number[], b: [] as number[] };
      const mbs = { a: [] as number[], b: [] as number[] };
      for (let i = 0; i < ctx.reps; i++) {
        ttfb.b.push(percentile((await baseline("ttfb")).ms!, 50));
        ttfb.a.push(percentile((await gated("ttfb", mode.terminated)).ms!, 50));
        mbs.b.push((await baseline("download")).mbPerSecond!);
        mbs.a.push((await gated("download", mode.terminated)).mbPerSecond!);
        await settle();
      }
      ctx.addRow(
        "11. https",
        `time to first byte, new connection (${mode.label})`,
        ttfb.a,
        ttfb.b,
        "ms",
        { op: "<=", value: mode.ttfb },
        1,
      );
      ctx.addRow("11. https", `100 MB download (${mode.label})`, mbs.a, mbs.b, "MB/s", { op: ">=", value: 0.9 });
    }
    const b = await baseline("streams");
    const a = await gated("streams", true);
    if (a.events !== 200 * 20 || b.events !== 200 * 20)
      throw new Error(`streams: ${a.events} events through the gate, ${b.events} without (${200 * 20} sent)`);
    ctx.addFigureRow(
      "11. https",
      "200 concurrent SSE streams, every event arrived: p99 delay (terminated)",
      a.p99!,
      b.p99!,
      "ms",
      {
        op: "<",
        value: 100,
        absolute: { of: "p99", unit: "ms", actual: a.p99! },
      },
    );
  } finally {
    srv.close();
  }
}
