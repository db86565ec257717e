/**
 * The warm pool against the real engine: sandboxes started before their run is known must hold
 * nothing of any run while they wait, gate their agent before its first instruction, show an agent
 * nothing of the agent before or after it (a sandbox runs one agent and is removed), never be handed
 * out once something was done to them, and be removed with the runner that started them when it
 * dies. Every attempt is really made: by agent code, by `docker exec`, by SIGKILL. Rows go into
 * docs/SECURITY.md. (The full escape suite runs in a pooled sandbox too: escape.test.ts.)
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRunner, definePolicy, type AgentResult, type Runner } from "../../../runner/index.js";
import { cleanup, dockerClient } from "../../../runner/internal.js";
import { LABEL } from "../../../runner/labels.js";
import { packagePath } from "../../../runner/paths.js";
import { waitUntil } from "../../../runner/util/wait-until.js";
import { bridgeGateway, tcpDecoy, tempDir, type Decoy } from "../helpers.js";
import { SecurityReport } from "./report.js";

const report = new SecurityReport("9-warm-pool");
const area = "warm pool";
const docker = dockerClient();

const AGENTS: Record<string, string> = {
  // Leaves what it can: a file in /tmp, a variable, an output file, a process that waits.
  "leaver.ts": `
    import { writeFileSync } from "node:fs";
    import { spawn } from "node:child_process";
    import { hostname } from "node:os";
    writeFileSync("/tmp/left-by-the-first.txt", process.env.FIRST_SECRET ?? "");
    writeFileSync("/output/first.txt", "mine");
    spawn("sleep", ["300"], { detached: true, stdio: "ignore" }).unref();
    console.log(JSON.stringify({ hostname: hostname(), secret: process.env.FIRST_SECRET }));
  `,
  // Looks for all of it.
  "looker.ts": `
    import { readdirSync, readFileSync } from "node:fs";
    import { hostname } from "node:os";
    const procs = readdirSync("/proc").filter((p) => /^\\d+$/.test(p)).map((p) => { try { return readFileSync("/proc/" + p + "/cmdline", "utf8").split("\\0").join(" ").trim(); } catch { return ""; } }).filter(Boolean);
    console.log(JSON.stringify({ hostname: hostname(), tmp: readdirSync("/tmp"), output: readdirSync("/output"), bundle: readdirSync("/opt/agent/run"), env: Object.keys(process.env), envValues: Object.values(process.env).join("\\n"), procs }));
  `,
  // Its very first statements: connect where the policy does not allow, and where it does.
  "first-instruction.ts": `
    import { connect } from "node:net";
    import { readFileSync } from "node:fs";
    const attempt = (host: string, port: number) => new Promise<string>((resolve) => { const s = connect({ host, port, timeout: 3000 }); s.on("connect", () => (s.destroy(), resolve("connected"))); s.on("error", (e) => resolve(e.message)); s.on("timeout", () => (s.destroy(), resolve("timeout"))); });
    const [forbidden, allowed] = await Promise.all([attempt(process.env.DECOY_HOST!, Number(process.env.DECOY_PORT)), attempt("127.0.0.1", 6379)]);
    const caps = readFileSync("/proc/self/status", "utf8").split("\\n").filter((l) => l.startsWith("Cap")).join(" ");
    console.log(JSON.stringify({ forbidden, allowed, caps }));
  `,
};

const lastJson = (r: AgentResult) => JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;

describe("the warm pool's sandboxes", () => {
  let dir: string;
  let runner: Runner;
  let decoy: Decoy;
  const policy = (extra: object = {}) =>
    definePolicy({ name: "pooled", network: { allowedEndpoints: ["localhost:6379"] }, ...extra });
  const run = async (agent: string, extra: object = {}, env?: Record<string, string>) =>
    runner.runAgent({
      agent: join(dir, agent),
      policy: policy(extra),
      outputDir: join(await tempDir(), agent.replace(/\.ts$/, "")),
      ...(env ? { env } : {}),
    });
  /** Until `count` sandboxes are ready (the pool refills in the background). */
  const filled = (count = 1) =>
    waitUntil(async () => (runner.warmPool?.readyCount() ?? 0) >= count, { timeoutMs: 60_000, intervalMs: 100 });
  const pooledContainers = async () =>
    (
      await docker.listContainers({ all: true, filters: { label: [`${LABEL.role}=sandbox`, `${LABEL.run}=pool`] } })
    ).filter((c) => c.Names[0]?.startsWith("/airlock-pool-"));

  beforeAll(async () => {
    dir = await tempDir();
    for (const [name, text] of Object.entries(AGENTS)) await writeFile(join(dir, name), text);
    runner = createRunner({ gatePoolSize: 0, pool: { size: 2 } });
    decoy = await tcpDecoy(await bridgeGateway());
    // The first run of the shape is cold; from then on the pool keeps it filled.
    const first = await run("looker.ts");
    expect(first.startup?.how).toBe("new sandbox");
    await filled(2);
  }, 300_000);

  afterAll(async () => {
    await runner?.close();
    await decoy?.close();
    report.save();
  });

  it("hold nothing of any run while they wait: no variable, no file, no agent code, and only airlock's runtime on standby", async () => {
    const secret = `pool-secret-${Date.now()}`;
    await run("looker.ts", { env: { allow: ["FIRST_SECRET"] } }, { FIRST_SECRET: secret });
    await filled(2);
    const waiting = await pooledContainers();
    expect(waiting.length).toBeGreaterThanOrEqual(1);
    const problems: string[] = [];
    for (const c of waiting) {
      const info = await docker.getContainer(c.Id).inspect();
      const env = (info.Config.Env ?? []).join("\n");
      if (env.includes(secret) || /AIRLOCK_RUN_ID|REDIS_URL|FIRST_SECRET/.test(env))
        problems.push(`${c.Names[0]}: env ${env}`);
      for (const m of info.Mounts) {
        if (m.Destination === "/opt/agent/run" || m.Destination === "/output") {
          const entries = await readdir(m.Source);
          if (entries.length) problems.push(`${c.Names[0]}: ${m.Destination} holds ${entries.join(",")}`);
        }
        if (m.Destination === "/etc/hosts" && (await readFile(m.Source, "utf8")) !== "")
          problems.push(`${c.Names[0]}: /etc/hosts written`);
      }
      const top = await docker.getContainer(c.Id).top({ ps_args: "-o pid,user,args" });
      const runtime = top.Processes.find((p: string[]) => p[2]?.startsWith("node /opt/airlock/dist/standby.js"));
      if (!runtime || runtime[1] === "root" || runtime[1] === "0")
        problems.push(`${c.Names[0]}: runtime on standby ${JSON.stringify(runtime)}`);
    }
    expect(
      report.add(
        area,
        "a sandbox waiting in the pool",
        "no variable, file or code of any run; runtime on standby not root",
        problems.join("; ") || `none in ${waiting.length} sandboxes`,
        problems.length === 0,
      ),
      problems.join("\n"),
    ).toBe(true);
  });

  it("gate the agent before its first instruction: its first connection where the policy does not allow fails, and it has no capability", async () => {
    await filled(1);
    const r = await run("first-instruction.ts", {
      env: { set: { DECOY_HOST: decoy.host, DECOY_PORT: String(decoy.port) } },
    });
    expect(r.status, r.stderr).toBe("succeeded");
    expect(r.startup?.how).toBe("pooled sandbox");
    const seen = lastJson(r) as { forbidden: string; allowed: string; caps: string };
    const capsZero = seen.caps
      .split(" ")
      .filter((c) => /^[0-9a-f]{16}$/.test(c))
      .every((c) => c === "0000000000000000");
    const held = seen.allowed === "connected" && seen.forbidden !== "connected" && decoy.hits() === 0 && capsZero;
    expect(
      report.add(
        area,
        "the agent's first instruction in a pooled sandbox: TCP to a decoy on the host, and to the allowed endpoint",
        "decoy refused (0 hits), allowed connects, no capabilities",
        `${seen.forbidden}; allowed ${seen.allowed}; decoy hits ${decoy.hits()}; ${seen.caps}`,
        held,
      ),
      JSON.stringify(seen),
    ).toBe(true);
  });

  it("show an agent nothing of the agent before it: each sandbox runs one agent and is removed", async () => {
    await filled(2);
    const secret = `first-secret-${Date.now()}`;
    const first = await run("leaver.ts", { env: { allow: ["FIRST_SECRET"] } }, { FIRST_SECRET: secret });
    const second = await run("looker.ts");
    expect([first.startup?.how, second.startup?.how]).toEqual(["pooled sandbox", "pooled sandbox"]);
    expect(first.outputFiles).toEqual(["first.txt"]);
    const a = lastJson(first) as { hostname: string };
    const b = lastJson(second) as {
      hostname: string;
      tmp: string[];
      output: string[];
      bundle: string[];
      env: string[];
      envValues: string;
      procs: string[];
    };
    const problems = [
      a.hostname === b.hostname ? "the same container" : "",
      b.tmp.includes("left-by-the-first.txt") ? "the first agent's /tmp file" : "",
      b.output.length ? `output: ${b.output.join(",")}` : "",
      b.bundle.join(",") !== "agent.mjs" ? `bundle: ${b.bundle.join(",")}` : "",
      b.env.includes("FIRST_SECRET") || b.envValues.includes(secret) ? "the first agent's variable" : "",
      b.procs.some((p) => p.startsWith("sleep")) ? "the first agent's process" : "",
    ].filter(Boolean);
    // The first agent's container is gone (removed in the background once its run returned).
    await runner.containersRemoved();
    const firstGone = !(await docker.listContainers({ all: true })).some((c) => c.Id.startsWith(a.hostname));
    expect(
      report.add(
        area,
        "the next agent after one that left a /tmp file, a variable, an output file and a waiting process",
        "sees none of it, in another container",
        problems.join("; ") || `nothing (${a.hostname} → ${b.hostname})`,
        problems.length === 0 && firstGone,
      ),
      problems.join("\n"),
    ).toBe(true);
  });

  it("are never handed out once something was run in them (docker exec): the run gets another, and that one is removed", async () => {
    await filled(2);
    const [target] = await pooledContainers();
    const exec = await docker.getContainer(target!.Id).exec({ Cmd: ["true"], AttachStdout: true, AttachStderr: true });
    await (await exec.start({})).resume();
    await waitUntil(async () => (await exec.inspect()).Running === false, { timeoutMs: 10_000, intervalMs: 50 });
    // Both ready ones may be claimed: the tampered one must never be.
    const results = [await run("looker.ts"), await run("looker.ts")];
    const hostnames = results.map((r) => (lastJson(r) as { hostname: string }).hostname);
    const handedOut = hostnames.some((h) => target!.Id.startsWith(h));
    await waitUntil(async () => !(await docker.listContainers({ all: true })).some((c) => c.Id === target!.Id), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    expect(
      report.add(
        area,
        "a pooled sandbox something was run in with docker exec",
        "never handed out, removed",
        handedOut
          ? `handed out to ${hostnames.join(",")}`
          : `not handed out (${results.map((r) => r.startup?.how).join(", ")}), removed`,
        !handedOut,
      ),
    ).toBe(true);
  });

  it("are replaced when one dies while it waits, and the next run is warm in a new one", async () => {
    await filled(2);
    const before = await pooledContainers();
    await docker.getContainer(before[0]!.Id).kill({ signal: "SIGKILL" });
    await waitUntil(
      async () =>
        !(await pooledContainers()).some((c) => c.Id === before[0]!.Id) && (runner.warmPool?.readyCount() ?? 0) >= 2,
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const r = await run("looker.ts");
    expect(r.startup?.how).toBe("pooled sandbox");
    expect(before[0]!.Id.startsWith((lastJson(r) as { hostname: string }).hostname)).toBe(false);
    expect(
      report.add(
        area,
        "a pooled sandbox killed while it waits",
        "replaced; never handed out",
        "replaced; the next run was warm in another",
        true,
      ),
    ).toBe(true);
  });
});

describe("crash cleanup of the pool", () => {
  it("a runner with a pool killed with SIGKILL leaves sandboxes and folders that cleanup removes", async () => {
    const dir = await tempDir();
    const cache = join(dir, "cache");
    await mkdir(cache);
    await writeFile(join(dir, "agent.ts"), "console.log('hi');\n");
    const script = join(dir, "runner.mjs");
    await writeFile(
      script,
      `import { createRunner, definePolicy } from ${JSON.stringify(packagePath("dist", "runner", "index.js"))};
       const runner = createRunner({ gatePoolSize: 0, pool: { size: 2 } });
       await runner.runAgent({ agent: ${JSON.stringify(join(dir, "agent.ts"))}, outputDir: ${JSON.stringify(join(dir, "out"))}, policy: definePolicy({ name: "crash", network: { allowedEndpoints: ["localhost:6379"] } }) });
       const t = setInterval(() => { if (runner.warmPool.readyCount() >= 2) { console.log("pool ready"); clearInterval(t); } }, 100);
       setTimeout(() => {}, 600_000);`,
    );
    const child = execa("node", [script], {
      cwd: packagePath(),
      reject: false,
      buffer: false,
      env: { XDG_CACHE_HOME: cache },
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the pool never filled")), 120_000);
      child.stdout!.on("data", (d: Buffer) => d.toString().includes("pool ready") && (clearTimeout(timer), resolve()));
    });
    const pid = child.pid!;
    child.kill("SIGKILL");
    await child;
    const ours = async () =>
      (await docker.listContainers({ all: true, filters: { label: [`${LABEL.role}=sandbox`] } })).filter((c) =>
        c.Labels[LABEL.owner]?.endsWith(`:${pid}`),
      );
    const folders = async () => readdir(join(cache, "airlock", "sandboxes")).catch(() => [] as string[]);
    const leftBefore = (await ours()).length;
    const foldersBefore = (await folders()).length;
    expect(leftBefore).toBe(2);
    expect(foldersBefore).toBe(2);
    const previous = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = cache;
    try {
      const done = await cleanup(docker);
      expect(done.foldersRemoved).toBe(2);
    } finally {
      if (previous === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = previous;
    }
    const held = (await ours()).length === 0 && (await folders()).length === 0;
    expect(
      report.add(
        area,
        "a runner with a warm pool killed with SIGKILL",
        "cleanup removes its sandboxes and their folders",
        `${leftBefore} sandboxes, ${foldersBefore} folders left; after cleanup: ${(await ours()).length}, ${(await folders()).length}`,
        held,
      ),
    ).toBe(true);
  }, 300_000);
});
