/**
 * Bench section 11: HTTPS services by name through the gate's egress proxy, against the same client
 * script talking to the same server without airlock (a plain `docker run` on the host's network,
 * connecting straight to the server's address), in the same run. Checked by name (SNI, pass-through)
 * and terminated at the gate (a header added): time to the first byte of a small request on a new
 * connection, a 100 MB download, and 200 concurrent streamed answers (server-sent events, 20 each).
 */
import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";
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
  const srv = spawn(process.execPath, [join(AGENTS, "https-server.cjs")], {
    env: { ...process.env, BENCH_KEY: chain.key, BENCH_CERT: chain.cert },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    srv.stdout.on("data", (d: Buffer) => {
      const m = /PORT (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
    srv.once("exit", (code) => reject(new Error(`the bench's HTTPS server exited (${code})`)));
  });
  const env = (what: string, extra: Record<string, string> = {}) => ({
    BENCH_HTTPS: what,
    BENCH_HOST: NAME,
    BENCH_PORT: String(port),
    BENCH_N: "30",
    BENCH_STREAMS: "200",
    ...extra,
  });
  const parse = (stdout: string, stderr = ""): Figures => {
    const line = /^BENCH (.*)$/m.exec(stdout)?.[1];
    if (!line) throw new Error(`the HTTPS client printed no figures: ${stdout.slice(-500)} ${stderr.slice(-500)}`);
    return JSON.parse(line) as Figures;
  };
  const baseline = async (what: string) => {
    const e = env(what, { BENCH_CA: chain.ca });
    const r = await execa("docker", [
      "run",
      "--rm",
      "--network",
      "host",
      // The name resolves from /etc/hosts, as it does in the sandbox.
      "--add-host",
      `${NAME}:127.0.0.2`,
      "--user",
      "10001:10001",
      // The policy's limits (below): the client has the same CPU and memory either way.
      "--cpus",
      "1",
      "--memory",
      "1g",
      ...Object.entries(e).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
      "--entrypoint",
      "node",
      image,
      "-e",
      CLIENT,
    ]);
    return parse(r.stdout, r.stderr);
  };
  /** The same client through the L4 gate (the server's address as a loopback endpoint): what the container's path costs without the proxy. */
  const l4 = async (what: string) => {
    const policy = definePolicy({
      name: "bench-https-l4",
      network: { allowedEndpoints: [`127.0.0.2:${port}`] },
      env: { set: env(what, { BENCH_CA: chain.ca, BENCH_CONNECT: "127.0.0.1" }) },
      timeoutSeconds: 300,
      resources: { memory: "1g", cpus: 1 },
    });
    const r = await defaultRunner().runAgent({
      command: ["node", "-e", CLIENT],
      policy,
      outputDir: join(await tmp(), "out"),
    });
    if (r.status !== "succeeded") throw new Error(`bench-https-l4: ${r.status} ${r.error ?? r.stderr}`);
    return parse(r.stdout, r.stderr);
  };
  const gated = async (what: string, terminated: boolean) => {
    const policy = definePolicy({
      name: "bench-https",
      network: {
        https: [
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
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
      ...(terminated ? { env: { BENCH_TOKEN: "bench" } } : {}),
    });
    if (r.status !== "succeeded") throw new Error(`bench-https: ${r.status} ${r.error ?? r.stderr}`);
    return parse(r.stdout, r.stderr);
  };
  const modes = [
    { label: "checked by name (SNI)", terminated: false, ttfb: 1.15 },
    { label: "terminated, header added", terminated: true, ttfb: 1.3 },
  ];
  try {
    const reference = { a: [] as number[], b: [] as number[] };
    for (let i = 0; i < ctx.reps; i++) {
      reference.b.push(percentile((await baseline("ttfb")).ms!, 50));
      reference.a.push(percentile((await l4("ttfb")).ms!, 50));
    }
    ctx.addRow(
      "11. https",
      "time to first byte, new connection (L4 gate, by address: the path without the proxy)",
      reference.a,
      reference.b,
      "ms",
      undefined,
      1,
    );
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
      "200 concurrent SSE streams (terminated), every event arrived: p99 lateness against the pace sent",
      a.p99!,
      b.p99!,
      "ms",
      {
        op: "<",
        value: 50,
        absolute: { of: "p99", unit: "ms", actual: a.p99! },
      },
    );
  } finally {
    srv.kill();
  }
}
