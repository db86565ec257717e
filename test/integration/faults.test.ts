/**
 * Faults: nothing is lost and nothing is left behind. Rows go into docs/SECURITY.md.
 */
import { readdir, writeFile } from "node:fs/promises";
import { globalAgent } from "node:http";
import { createServer, connect, type Socket } from "node:net";
import { join } from "node:path";
import Docker from "dockerode";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { createRunner, definePolicy, runAgent, type AgentResult, type RunEvent } from "../../runner/index.js";
import { dockerClient } from "../../runner/internal.js";
import { LABEL } from "../../runner/labels.js";
import { containersRemoved } from "../../runner/runner.js";
import { packagePath } from "../../runner/paths.js";
import { AGENTS, leftoverContainers, localRedisAdmin, tempDir } from "./helpers.js";
import { attackerImage } from "./security/attacker.js";
import { SecurityReport } from "./security/report.js";

const report = new SecurityReport("3-faults");
afterAll(() => report.save());
const CLI = packagePath("dist", "runner", "cli", "main.js");

describe("resource exhaustion", () => {
  it("memory bomb: the agent is OOM-killed and the result says oom", async () => {
    const result = await runAgent({
      agent: join(AGENTS, "memory-bomb.ts"),
      policy: definePolicy({ name: "membomb", resources: { memory: "96m" }, timeoutSeconds: 60 }),
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
    });
    expect(
      report.add(
        "faults",
        "memory bomb (96 MiB limit)",
        'status "oom", container removed',
        `${result.status}, exit ${result.exitCode}, after ${result.durationMs} ms`,
        result.status === "oom",
      ),
    ).toBe(true);
    expect(await leftoverContainers()).toEqual([]);
  });

  it("fork bomb: the pids limit holds and the host stays responsive", async () => {
    const image = await attackerImage({ airlockBuilt: true });
    const before = Number((await execa("sh", ["-c", "ps -e --no-headers | wc -l"])).stdout);
    let peak = before;
    let slowest = 0;
    const run = runAgent({
      // `exec sleep`: the agent itself stays stuck even when the bomb has taken every pid (no fork needed).
      command: ["sh", "-c", "bomb() { bomb | bomb & }; bomb; exec sleep 30"],
      image,
      policy: definePolicy({ name: "forkbomb", resources: { pids: 64 }, timeoutSeconds: 6 }),
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
      stopGraceMs: 1000,
    });
    // While it runs, the host must keep answering: a process spawns and the event loop turns.
    const probe = setInterval(async () => {
      const t = Date.now();
      const ps = await execa("sh", ["-c", "ps -e --no-headers | wc -l"]);
      slowest = Math.max(slowest, Date.now() - t);
      peak = Math.max(peak, Number(ps.stdout));
    }, 500);
    const result = await run;
    clearInterval(probe);
    const held = peak - before <= 64 + 16 && slowest < 2000 && result.status === "timed_out";
    expect(
      report.add(
        "faults",
        "fork bomb (pids limit 64)",
        "capped at the limit; host responsive; stopped at the timeout",
        `host processes +${peak - before} at peak, slowest host spawn ${slowest} ms, ${result.status}`,
        held,
      ),
    ).toBe(true);
    expect(await leftoverContainers()).toEqual([]);
  });

  it("endless stdout/stderr: logs are capped and the runner's memory stays bounded", async () => {
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let lines = 0;
    const result = await runAgent({
      agent: join(AGENTS, "flood.ts"),
      policy: definePolicy({ name: "flood", timeoutSeconds: 5 }),
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
      stopGraceMs: 1000,
      logCapBytes: 1024 * 1024,
      onEvent: (e) => e.type === "output" && lines++,
    });
    const grew = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    const dropped = Number(/\[airlock: (\d+) earlier bytes of stdout dropped\]/.exec(result.stdout)?.[1] ?? 0);
    const held =
      result.status === "timed_out" &&
      result.stdout.length < 1.1 * 1024 * 1024 &&
      result.stderr.length < 1.1 * 1024 * 1024 &&
      dropped > 50 * 1024 * 1024 &&
      grew < 200;
    expect(
      report.add(
        "faults",
        "endless stdout/stderr for 5 s",
        "result keeps the last 1 MiB per stream; runner memory bounded",
        `${lines} lines streamed, ${Math.round(dropped / 1024 / 1024)} MiB dropped, kept ${Math.round(result.stdout.length / 1024)} KiB; runner RSS +${grew.toFixed(0)} MiB`,
        held,
      ),
    ).toBe(true);
  });
});

describe("stopping and crashing", () => {
  it("Ctrl-C of airlock up stops every agent and removes every container", async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, "p.yaml"),
      "name: long\ntimeoutSeconds: 120\nnetwork:\n  allowedEndpoints: [localhost:6379]\n",
    );
    await writeFile(
      join(dir, "run.yaml"),
      `name: interrupt\nagents:\n  a:\n    agent: ${join(AGENTS, "slow.ts")}\n    policy: p.yaml\n  b:\n    agent: ${join(AGENTS, "slow.ts")}\n    policy: p.yaml\n`,
    );
    const child = execa("node", [CLI, "up", join(dir, "run.yaml"), "--output", join(dir, "out")], {
      reject: false,
      env: { NO_COLOR: "1" },
    });
    let busy = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("agents never started")), 60_000);
      child.stdout!.on("data", (d: Buffer) => {
        busy += d.toString().split("now busy").length - 1;
        if (busy >= 2) clearTimeout(timer), resolve();
      });
    });
    const running = (await leftoverContainers()).length;
    const t = Date.now();
    child.kill("SIGINT");
    const done = await child;
    const left = await leftoverContainers();
    // One container per gated agent (its init applies the rules in its own namespace).
    const held = done.exitCode === 130 && left.length === 0 && running === 2;
    expect(
      report.add(
        "faults",
        "Ctrl-C of airlock up with 2 agents running",
        "every agent stopped, every container removed, exit 130",
        `${running} containers before, ${left.length} after, exit ${done.exitCode} in ${Date.now() - t} ms`,
        held,
      ),
    ).toBe(true);
  });

  it("the broker stops mid-run: the agent sees a connection error and the result says so", async () => {
    const dir = await tempDir();
    const port = 6390;
    // The test's own broker, without credentials: agents are not loopback clients, so protected mode goes.
    const redis = execa(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "no", "--save", "", "--appendonly", "no"],
      { reject: false },
    );
    await new Promise((r) => setTimeout(r, 500));
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const run = runAgent({
      agent: join(AGENTS, "subscriber.ts"),
      policy: definePolicy({
        name: "subscriber",
        network: { allowedEndpoints: [`localhost:${port}`] },
        env: { set: { REDIS_URL: `redis://localhost:${port}` } },
        timeoutSeconds: 60,
      }),
      outputDir: join(dir, "out"),
      workingDir: AGENTS,
      onEvent: (e) => e.type === "ready" && ready(),
    });
    await isReady;
    redis.kill("SIGKILL");
    const result = await run;
    await redis;
    const said = result.stderr.split("\n").find((l) => l.includes("BusConnectionError")) ?? result.stderr.slice(0, 200);
    const held =
      result.status === "failed" &&
      /cannot reach redis at localhost:6390/.test(result.stderr) &&
      result.durationMs < 30_000;
    expect(
      report.add(
        "faults",
        "the broker is killed mid-run",
        "agent fails with a connection error naming the broker",
        `${result.status} (exit ${result.exitCode}): ${said}`,
        held,
      ),
    ).toBe(true);
  });

  it("airlock's local Redis restarts mid-run: the agent fails with a clear error and no identity is left", async () => {
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const run = runAgent({
      name: "restart",
      agent: join(AGENTS, "bus-subscriber.ts"),
      policy: definePolicy({
        name: "restart",
        network: { allowedEndpoints: ["localhost:6379"] },
        bus: { redis: { subscribe: ["faults:{run}"] } },
        timeoutSeconds: 60,
      }),
      outputDir: join(await tempDir(), "out"),
      onEvent: (e) => e.type === "ready" && ready(),
    });
    await isReady;
    const during = (await brokerUsers()).filter((u) => u.startsWith("airlock-restart-"));
    // Stop it as its admin, and start it again as `airlock brokers start` does (same config).
    await brokerUsers("SHUTDOWN");
    const restarted = await execa("bash", [packagePath("scripts", "brokers.sh"), "start", "redis"], { reject: false });
    const result = await run;
    await containersRemoved();
    const after = (await brokerUsers()).filter((u) => u.startsWith("airlock-restart-"));
    const said =
      result.stderr.split("\n").find((l) => /BusConnectionError|WRONGPASS|ECONNREFUSED/.test(l)) ??
      result.stderr.slice(-200);
    const held =
      restarted.exitCode === 0 &&
      during.length === 1 &&
      result.status === "failed" &&
      after.length === 0 &&
      result.durationMs < 45_000;
    expect(
      report.add(
        "faults",
        "the broker (airlock's local Redis) restarts while an agent with its own identity is subscribed",
        "the agent fails with a connection error; no identity is left on the broker",
        `${result.status} (exit ${result.exitCode}): ${said.slice(0, 80)}; identities during ${during.length}, after ${after.length}`,
        held,
      ),
      `${restarted.stderr}\n${result.stderr}`,
    ).toBe(true);
  });

  it("Docker is missing: a clear error, not a stack trace", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "p.yaml"), "name: nodocker\n");
    const run = await execa(
      "node",
      [CLI, "run", join(AGENTS, "files.ts"), "--policy", join(dir, "p.yaml"), "--output", join(dir, "out")],
      { reject: false, env: { NO_COLOR: "1", DOCKER_HOST: "unix:///tmp/airlock-no-docker.sock" } },
    );
    const text = run.stdout + run.stderr;
    const held =
      run.exitCode === 125 &&
      text.includes("Docker engine not reachable: unix:///tmp/airlock-no-docker.sock does not exist") &&
      text.includes("fix:") &&
      !/\n\s+at /.test(text);
    expect(
      report.add(
        "faults",
        "no Docker engine (DOCKER_HOST points nowhere)",
        "one clear error with the fix; exit 125",
        text.trim().split("\n").slice(-2).join(" "),
        held,
      ),
    ).toBe(true);
  });

  it("the Docker engine stops answering mid-run: the result is an error that says so", async () => {
    // A socket that forwards to the real engine, cut while the agent runs (the engine itself keeps going).
    const socketPath = join(await tempDir(), "docker.sock");
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect("/var/run/docker.sock");
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(socketPath, r));
    const events: RunEvent[] = [];
    const run = runAgent({
      agent: join(AGENTS, "slow.ts"),
      name: "engine-stops",
      policy: definePolicy({ name: "engine-stops", timeoutSeconds: 60 }),
      outputDir: join(await tempDir(), "out"),
      workingDir: AGENTS,
      runner: createRunner({ docker: new Docker({ socketPath }) }),
      onEvent: (e) => {
        events.push(e);
        if (e.type === "output" && e.line.includes("now busy")) {
          proxy.close();
          for (const s of sockets) s.destroy();
        }
      },
    });
    const result: AgentResult = await run;
    const held = result.status === "error" && result.errorCode === "DOCKER_UNAVAILABLE";
    expect(
      report.add(
        "faults",
        "the Docker engine stops answering mid-run",
        'status "error" with the reason',
        `${result.status}: ${result.error?.split("\n")[0]}`,
        held,
      ),
      `${result.status} ${result.errorCode ?? ""}: ${result.error ?? ""}`,
    ).toBe(true);
    // The real engine still has the containers; a later cleanup removes them.
    const docker = dockerClient();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABEL.agent}=engine-stops`] } }))
      await docker.getContainer(c.Id).remove({ force: true });
  });
});

describe("many agents at once", () => {
  it("20 agents, some failing: every result is right and nothing leaks", async () => {
    const docker = dockerClient();
    const fds = async () => (await readdir("/proc/self/fd")).length;
    const iptablesLines = async () =>
      (await execa("sh", ["-c", "iptables-save 2>/dev/null | grep -vc '^#'"], { reject: false })).stdout;
    const networks = async () => (await docker.listNetworks()).length;
    // Warm-up so lazily opened handles (docker agent, image cache) are not counted as leaks.
    await runAgent({
      agent: join(AGENTS, "files.ts"),
      policy: definePolicy({ name: "warm", network: { allowedEndpoints: ["localhost:6379"] } }),
      outputDir: join(await tempDir(), "warm"),
      workingDir: AGENTS,
    });
    // Its container and host rules are removed in the background: not part of "before".
    await containersRemoved();
    const children = async () =>
      new Set(
        (await execa("pgrep", ["-P", String(process.pid)], { reject: false })).stdout.split("\n").filter(Boolean),
      );
    const idleSockets = () => Object.values(globalAgent.freeSockets).flat().length;
    const before = {
      fds: (await fds()) - idleSockets(),
      rules: await iptablesLines(),
      networks: await networks(),
      children: await children(),
    };
    const dir = await tempDir();
    const kinds = Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? "timeout" : i % 4 === 1 ? "fail" : "ok"));
    const results = await Promise.all(
      kinds.map((kind, i) =>
        runAgent({
          name: `many-${i}`,
          agent: join(AGENTS, kind === "timeout" ? "slow.ts" : kind === "fail" ? "fails-fast.ts" : "probe.ts"),
          policy: definePolicy({
            name: `many-${i}`,
            timeoutSeconds: kind === "timeout" ? 3 : 120,
            ...(i % 2 === 0 ? { network: { allowedEndpoints: ["localhost:6379"] }, bus: { redis: {} } } : {}),
            env: {
              set: {
                PROBES: JSON.stringify([{ id: "r", kind: "tcp", host: "127.0.0.1", port: 6379, send: "PING\r\n" }]),
              },
            },
          }),
          outputDir: join(dir, `out-${i}`),
          workingDir: AGENTS,
          stopGraceMs: 1000,
        }),
      ),
    );
    const expected = kinds.map((k) => (k === "timeout" ? "timed_out" : k === "fail" ? "failed" : "succeeded"));
    const right = results.every((r, i) => r.status === expected[i]);
    const redisOk = results
      .filter((_r, i) => kinds[i] === "ok" && i % 2 === 0)
      .every((r) => (r.returnValue as { results: { r: { reply?: string } } }).results.r.reply?.startsWith("-NOAUTH"));
    await containersRemoved();
    await new Promise((r) => setTimeout(r, 500));
    const after = {
      fds: (await fds()) - idleSockets(),
      rules: await iptablesLines(),
      networks: await networks(),
      children: await children(),
    };
    const containers = (await leftoverContainers()).filter((c) => c.includes("many-"));
    const identities = (await brokerUsers()).filter((u) => u.startsWith("airlock-many-"));
    const newChildren = [...after.children].filter((c) => !before.children.has(c)).join(" ");
    const held =
      right &&
      redisOk &&
      containers.length === 0 &&
      identities.length === 0 &&
      after.rules === before.rules &&
      after.networks === before.networks &&
      after.fds <= before.fds + 2 &&
      newChildren === "";
    expect(
      report.add(
        "faults",
        "20 agents at once (10 succeed, 5 fail, 5 time out; half gated)",
        "every status right; no containers, broker identities, networks, rules, processes or open files left",
        `statuses ${right ? "all right" : "WRONG"}; containers ${containers.length}; broker identities ${identities.length}; networks ${before.networks}→${after.networks}; host iptables lines ${before.rules}→${after.rules}; runner fds (less idle keep-alive sockets) ${before.fds}→${after.fds}; new child processes ${newChildren || "none"}`,
        held,
      ),
      JSON.stringify(results.map((r) => [r.name, r.status, r.error])),
    ).toBe(true);
  });
});

/** The local Redis' ACL users (the ten gated agents above each had one); or, given a command, that command as its admin. */
async function brokerUsers(command?: string): Promise<string[]> {
  const r = await localRedisAdmin();
  try {
    if (command) {
      await r.call(command, "NOSAVE").catch(() => {});
      return [];
    }
    return (await r.call("ACL", "USERS")) as string[];
  } finally {
    r.disconnect();
  }
}
