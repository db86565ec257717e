/**
 * An agent's run as a Pod, end to end on the cluster: results and outputs come back to the caller's
 * folder, only allowed variables reach it, the statuses are the Docker ones (timeout, cancel, OOM, a
 * failed exit), a derived image is gated like any other, the CLI streams with the agent's name, and
 * what a killed runner left is removed by `airlock cleanup --backend kubernetes`.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, stat, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { createRunner, definePolicy, runAgent } from "../../runner/index.js";
import { kubernetesBackend } from "../../runner/backends/kubernetes/index.js";
import { packagePath } from "../../runner/paths.js";
import { waitUntil } from "../../runner/util/wait-until.js";
import { AGENTS, leftoverContainers, tempDir } from "../integration/helpers.js";

const CLI = packagePath("dist", "runner", "cli", "main.js");

async function airlockPods(selector = ""): Promise<{ name: string; deleting: boolean }[]> {
  const backend = kubernetesBackend();
  const pods = await backend.client.core.listNamespacedPod({
    namespace: backend.settings.namespace,
    labelSelector: `dev.airlock.managed=true${selector}`,
  });
  return pods.items.map((p) => ({ name: p.metadata!.name!, deleting: Boolean(p.metadata!.deletionTimestamp) }));
}

describe("an agent as a Pod", () => {
  it("brings its output files back to the caller's folder, owned by the caller, and keeps /workspace read-only", async () => {
    const dir = await tempDir();
    const result = await runAgent({
      agent: join(AGENTS, "files.ts"),
      policy: definePolicy({ name: "files" }),
      outputDir: join(dir, "out"),
      workingDir: AGENTS,
    });
    expect(result).toMatchObject({
      name: "files",
      status: "failed",
      exitCode: 3,
      outputFiles: ["nested/data.json", "report.txt"],
    });
    expect(result.stdout).toContain("wrote 2 files as uid");
    // One log stream on Kubernetes: stderr's lines are in stdout.
    expect(result.stdout).toContain("a line on stderr");
    expect(JSON.parse(await readFile(join(dir, "out", "nested", "data.json"), "utf8"))).toEqual({
      workspaceWritable: false,
    });
    expect(await readFile(join(dir, "out", "report.txt"), "utf8")).toMatch(/^uid=10001 /);
    for (const f of ["report.txt", "nested/data.json"])
      expect((await stat(join(dir, "out", f))).uid).toBe(process.getuid?.());
    expect(await leftoverContainers()).toEqual([]);
  });

  it("passes only the variables the policy allows", async () => {
    process.env.IT_ALLOWED = "from-host";
    process.env.IT_SECRET = "must-not-leak";
    try {
      const result = await runAgent({
        agent: join(AGENTS, "probe.ts"),
        policy: definePolicy({ name: "env", env: { allow: ["IT_ALLOWED"], set: { FIXED: "fixed", PROBES: "[]" } } }),
        outputDir: join(await tempDir(), "out"),
        workingDir: AGENTS,
      });
      expect(result.status, result.error).toBe("succeeded");
      const env = (result.returnValue as { env: Record<string, string> }).env;
      expect(env).toMatchObject({ IT_ALLOWED: "from-host", FIXED: "fixed", AIRLOCK_AGENT_NAME: "probe" });
      expect(Object.values(env)).not.toContain("must-not-leak");
    } finally {
      delete process.env.IT_ALLOWED;
      delete process.env.IT_SECRET;
    }
  });

  it("gets the run's own /etc/hosts, not the kubelet's (which is not always there): localhost resolves without DNS", async () => {
    // As the Python RabbitMQ publisher does (pika): getaddrinfo("localhost"). The Pod has no DNS, so
    // this holds only if /etc/hosts is the run's, and the kubelet's is not always mounted.
    const script =
      "import socket\nprint(open('/etc/hosts').read().splitlines()[0])\nprint(sorted({a[4][0] for a in socket.getaddrinfo('localhost', 6379, 0, socket.SOCK_STREAM)}))";
    const result = await runAgent({
      command: ["python3", "-c", script],
      runtime: "python",
      policy: definePolicy({ name: "hosts", network: { allowedEndpoints: ["localhost:6379"] } }),
      outputDir: join(await tempDir(), "out"),
    });
    expect(result.status, result.stdout).toBe("succeeded");
    expect(result.stdout).toBe("127.0.0.1\tlocalhost\n['127.0.0.1']\n");
  });

  it("is stopped at its timeout (SIGTERM, then SIGKILL), and what it wrote before comes back", async () => {
    const dir = await tempDir();
    const started = Date.now();
    const result = await runAgent({
      agent: join(AGENTS, "slow.ts"),
      policy: definePolicy({ name: "slow", timeoutSeconds: 3 }),
      outputDir: join(dir, "out"),
      stopGraceMs: 1000,
    });
    expect(result.status).toBe("timed_out");
    expect(result.stdout).toContain("got SIGTERM, ignoring it");
    expect(await readFile(join(dir, "out", "partial.txt"), "utf8")).toBe("written before the timeout\n");
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await leftoverContainers()).toEqual([]);
  });

  it("is cancelled through its AbortSignal, and flushes on the way out", async () => {
    const dir = await tempDir();
    const stop = new AbortController();
    const result = await runAgent({
      agent: join(AGENTS, "graceful.ts"),
      policy: definePolicy({ name: "graceful", timeoutSeconds: 60 }),
      outputDir: join(dir, "out"),
      signal: stop.signal,
      onEvent: (e) => e.type === "ready" && stop.abort(),
    });
    expect(result).toMatchObject({ status: "cancelled", ready: true, returnValue: { stoppedCleanly: true } });
    expect(await readFile(join(dir, "out", "flushed.txt"), "utf8")).toBe("flushed on stop\n");
  });

  it("a stop before the keeper that sends it has started still reaches the agent with SIGTERM", async () => {
    // Timed out 1 s after the gate is released: the agent's container is just starting, the keeper (after it) not yet.
    const result = await runAgent({
      agent: join(AGENTS, "graceful.ts"),
      policy: definePolicy({ name: "graceful", timeoutSeconds: 1 }),
      outputDir: join(await tempDir(), "out"),
      stopGraceMs: 30_000,
    });
    expect(result.status).toBe("timed_out");
    expect(result.warnings ?? []).toEqual([]);
    // Not killed at the end of its 30 s grace: the SIGTERM arrived.
    expect(result.durationMs).toBeLessThan(20_000);
  });

  it("holds /output to its quota against a flood (4 threads of 1 MiB files, SIGTERM ignored): never more than the limit on the node or the host", async () => {
    const dir = await tempDir();
    const script = `import signal, threading, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
def w(k):
    for i in range(10**6):
        try:
            open("/output/w%d-%d" % (k, i), "wb").write(b"x" * (1 << 20))
        except OSError:
            time.sleep(0.001)
for k in range(4): threading.Thread(target=w, args=(k,), daemon=True).start()
time.sleep(600)`;
    // The Pod's /output is a memory-backed emptyDir the kubelet mounts on this node (the local cluster).
    let nodePeak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const line of readFileSync("/proc/mounts", "utf8")
          .split("\n")
          .filter((l) => l.includes("empty-dir/output"))) {
          const s = await statfs(line.split(" ")[1]!).catch(() => undefined);
          // Still the tmpfs (0x01021994): an emptyDir unmounted since /proc/mounts was read leaves the folder on the node's disk.
          if (s && s.type === 0x01021994) nodePeak = Math.max(nodePeak, (s.blocks - s.bfree) * s.bsize);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const result = await runAgent({
      command: ["python3", "-c", script],
      runtime: "python",
      policy: definePolicy({ name: "flood", timeoutSeconds: 8, resources: { output: "1m", outputFiles: 2000 } }),
      outputDir: join(dir, "out"),
      stopGraceMs: 1000,
    }).finally(() => (sampling = false));
    await sampler;
    const files = await readdir(join(dir, "out"));
    let bytes = 0;
    for (const f of files) bytes += (await stat(join(dir, "out", f))).size;
    const seen = `node tmpfs peak ${(nodePeak / 1048576).toFixed(2)} MiB; host ${(bytes / 1048576).toFixed(2)} MiB in ${files.length} files; ${result.status}: ${result.error}`;
    await mkdir(packagePath(".airlock"), { recursive: true });
    await writeFile(packagePath(".airlock", "k8s-output-flood.txt"), `${seen}\n`);
    expect(
      nodePeak <= 1048576 && bytes <= 1048576 && /output limit (reached|exceeded)/.test(result.error ?? ""),
      seen,
    ).toBe(true);
  });

  it("is OOM-killed at the policy's memory limit, and says so", async () => {
    const result = await runAgent({
      agent: join(AGENTS, "memory-bomb.ts"),
      policy: definePolicy({ name: "bomb", resources: { memory: "128m" }, timeoutSeconds: 60 }),
      outputDir: join(await tempDir(), "out"),
    });
    expect(result.status).toBe("oom");
    expect(result.exitCode).toBe(137);
  });

  it("refuses a run whose localhost endpoint it cannot forward, naming the policy, the endpoint and the setting", async () => {
    const saved = process.env.AIRLOCK_K8S_HOST_ADDRESS;
    delete process.env.AIRLOCK_K8S_HOST_ADDRESS;
    const runner = createRunner({ reapOrphans: false });
    try {
      const result = await runAgent({
        agent: join(AGENTS, "probe.ts"),
        policy: packagePath("policies", "hello.yaml"),
        outputDir: join(await tempDir(), "out"),
        runner,
      });
      expect(result.status).toBe("error");
      expect(result.error).toMatch(
        /hello\.yaml: network\.allowedEndpoints has localhost:6379[\s\S]*fix: set AIRLOCK_K8S_HOST_ADDRESS/,
      );
      expect(await airlockPods()).toEqual([]);
    } finally {
      process.env.AIRLOCK_K8S_HOST_ADDRESS = saved;
      await runner.close();
    }
  });
});

/** `airlock run graceful.ts --backend kubernetes`, once the agent says it is ready. */
async function gracefulCliRun(dir: string) {
  const child = execa(
    "node",
    [
      CLI,
      "run",
      join(AGENTS, "graceful.ts"),
      "--policy",
      packagePath("policies", "hello.yaml"),
      "--output",
      join(dir, "out"),
      "--backend",
      "kubernetes",
    ],
    { reject: false, env: { NO_COLOR: "1" } },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  await waitUntil(async () => out.includes("ready, waiting to be stopped"), { timeoutMs: 120_000, intervalMs: 100 });
  return { child, output: () => out };
}

describe("the CLI on the kubernetes backend", () => {
  it("airlock run --backend kubernetes streams the agent's lines with its name and exits with its code", async () => {
    const dir = await tempDir();
    const run = await execa(
      "node",
      [
        CLI,
        "run",
        join(AGENTS, "fails-fast.ts"),
        "--policy",
        packagePath("policies", "hello.yaml"),
        "--output",
        join(dir, "out"),
        "--backend",
        "kubernetes",
      ],
      { reject: false, env: { NO_COLOR: "1", AIRLOCK_BACKEND: "" } },
    );
    expect(run.exitCode, run.stdout + run.stderr).toBe(2);
    expect(run.stdout).toMatch(/fails-fast \| giving up at once/);
  });

  it("Ctrl-C stops the agent and removes its Pod", async () => {
    const dir = await tempDir();
    const { child, output } = await gracefulCliRun(dir);
    child.kill("SIGINT");
    const done = await child;
    expect(done.exitCode, output() + done.stderr).toBe(130);
    expect(existsSync(join(dir, "out", "flushed.txt"))).toBe(true);
    expect((await airlockPods()).filter((p) => p.name.includes("graceful") && !p.deleting)).toEqual([]);
  });

  it("airlock cleanup --backend kubernetes removes the Pod, ConfigMap, Secret and NetworkPolicy of a runner killed with SIGKILL", async () => {
    const dir = await tempDir();
    const { child } = await gracefulCliRun(dir);
    child.kill("SIGKILL");
    await child;
    const left = (await airlockPods()).filter((p) => p.name.includes("graceful") && !p.deleting);
    expect(left).toHaveLength(1);
    const cleaned = await execa("node", [CLI, "cleanup", "--backend", "kubernetes"], { reject: false });
    expect(cleaned.exitCode, cleaned.stderr).toBe(0);
    expect(cleaned.stdout).toMatch(
      new RegExp(
        `pod airlock/${left[0]!.name}.*configmap airlock/${left[0]!.name}.*secret airlock/${left[0]!.name}-env.*networkpolicy airlock/${left[0]!.name}`,
      ),
    );
    expect((await airlockPods()).filter((p) => p.name === left[0]!.name && !p.deleting)).toEqual([]);
  });
});
