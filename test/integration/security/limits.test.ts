/**
 * Limits held against an agent that tries: the output quota (on both ways a Docker run holds
 * /output), a terminal it tries to take over, sources built to exhaust the host-side Python check,
 * and a burst of runs while a gate is kept ready. Every attempt is real, and each row goes to
 * docs/SECURITY.md.
 */
import { readFile, readdir, lstat, statfs, writeFile, mkdir } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { createRunner, definePolicy, type AgentResult } from "../../../runner/index.js";
import { packagePath } from "../../../runner/paths.js";
import { waitUntil } from "../../../runner/util/wait-until.js";
import { leftoverContainers, tempDir } from "../helpers.js";
import { SecurityReport } from "./report.js";

const HERE = join(import.meta.dirname, "limits");
const CLI = packagePath("dist", "runner", "cli", "main.js");
const report = new SecurityReport("5-limits");
const MiB = 1024 * 1024;

afterAll(() => report.save());

/** Bytes the host's disk spends below `dir` (blocks of every entry), without following links. */
async function diskUsage(dir: string): Promise<{ bytes: number; entries: number }> {
  let bytes = 0;
  let entries = 0;
  const walk = async (at: string): Promise<void> => {
    for (const e of await readdir(at, { withFileTypes: true }).catch(() => [])) {
      const info = await lstat(join(at, e.name)).catch(() => undefined);
      entries++;
      bytes += (info?.blocks ?? 0) * 512;
      if (e.isDirectory()) await walk(join(at, e.name));
    }
  };
  await walk(dir);
  return { bytes, entries };
}

const TMPFS_MAGIC = 0x01021994;

/** The most any Docker volume tmpfs holds right now (where the output volumes are mounted). */
async function volumeTmpfsPeak(): Promise<number> {
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .filter((l) => l.startsWith("tmpfs ") && l.includes("/volumes/"));
  let most = 0;
  for (const line of mounts) {
    const at = line.split(" ")[1]!.replace(/\\040/g, " ");
    const s = await statfs(at).catch(() => undefined);
    // Still the tmpfs: a volume unmounted since /proc/mounts was read leaves the folder under it (the engine's disk).
    if (s && s.type === TMPFS_MAGIC) most = Math.max(most, (s.blocks - s.bfree) * s.bsize);
  }
  return most;
}

async function volumes(): Promise<string[]> {
  return (await execa("docker", ["volume", "ls", "-q"])).stdout.split("\n").filter(Boolean);
}

describe.each([
  ["a sandbox (its init holds /output)", false],
  ["a run without network (an output keeper holds /output)", true],
])("the output quota, attacked from %s", (_label, disabled) => {
  const area = `limits: output${disabled ? " (keeper)" : ""}`;
  it("a flood of 1 MiB files and fallocates, SIGTERM ignored, never puts more than the limit on the host", async () => {
    const outputDir = join(await tempDir(), "out");
    const before = new Set(await volumes());
    let hostPeak = 0;
    let tmpfsPeak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        hostPeak = Math.max(hostPeak, (await diskUsage(outputDir)).bytes);
        tmpfsPeak = Math.max(tmpfsPeak, await volumeTmpfsPeak());
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const runner = createRunner();
    let result: AgentResult;
    try {
      result = await runner.runAgent({
        agent: join(HERE, "flood.py"),
        policy: definePolicy({
          name: "flood",
          timeoutSeconds: 6,
          resources: { output: "1m", outputFiles: 2000 },
          ...(disabled ? { network: { disabled: true } } : {}),
        }),
        outputDir,
        stopGraceMs: 1000,
      });
    } finally {
      sampling = false;
      await sampler;
      await runner.close();
    }
    const after = await diskUsage(outputDir);
    const left = (await volumes()).filter((v) => !before.has(v));
    // The margin: each entry's inode and name are not in the 1 MiB (at most 2000 entries here).
    const held =
      tmpfsPeak <= MiB &&
      hostPeak <= MiB + 2000 * 520 &&
      after.bytes <= MiB + 2000 * 520 &&
      /output limit (reached|exceeded)/.test(result.error ?? "") &&
      left.length === 0;
    expect(
      report.add(
        area,
        "4 loops writing 1 MiB files and fallocating new ones, SIGTERM ignored, policy output 1m / 2000 entries",
        "refused at the limit: ≤ 1 MiB held while it runs, ≤ 1 MiB of data (plus entries' inodes and names) copied out, no volume left",
        `in the sandbox at most ${(tmpfsPeak / MiB).toFixed(2)} MiB; on the host at most ${(hostPeak / MiB).toFixed(2)} MiB, after ${(after.bytes / MiB).toFixed(2)} MiB in ${after.entries} entries; ${result.status}; volumes left ${left.length}`,
        held,
      ),
      `${result.status} ${result.error} ${JSON.stringify({ tmpfsPeak, hostPeak, after, left })}`,
    ).toBe(true);
    expect(await leftoverContainers()).toEqual([]);
  }, 180_000);
});

describe("the terminal, attacked by an agent's output", () => {
  it("airlock run in a pty shows escape sequences as text; --json and the result keep the bytes", async () => {
    const dir = await tempDir();
    const policy = join(dir, "policy.yaml");
    await writeFile(policy, "name: terminal\nnetwork:\n  disabled: true\n");
    const typescript = join(dir, "typescript");
    // script(1) gives the CLI a real pty (isTTY), as a user's terminal does; NO_COLOR keeps airlock's own escapes out.
    const cmd = `node ${CLI} run ${join(HERE, "terminal.py")} --policy ${policy} --output ${join(dir, "out")}`;
    const run = await execa("script", ["-qfec", cmd, typescript], {
      reject: false,
      env: { NO_COLOR: "1", TERM: "xterm" },
    });
    const seen = await readFile(typescript, "utf8");
    const agentLines = seen.split(/\r?\n/).filter((l) => l.startsWith("terminal |"));
    const json = await execa(
      "node",
      [CLI, "run", join(HERE, "terminal.py"), "--policy", policy, "--output", join(dir, "out2"), "--json"],
      { reject: false },
    );
    const result = JSON.parse(json.stdout) as AgentResult;
    const raw = /\u001b\]52;c;/.test(result.stdout) && result.stdout.includes("\u001b[1A");
    const held =
      !seen.includes("\u001b") &&
      !seen.includes("\u202e") &&
      seen.includes("\\x1b]52;c;") &&
      seen.includes("tab\tkept") &&
      /✖ terminal failed \(exit 3\)/.test(seen) &&
      raw &&
      run.exitCode === 3;
    expect(
      report.add(
        "limits: terminal",
        "clear the screen, set the title (OSC 0), write the clipboard (OSC 52), hide a link (OSC 8), move the cursor up and forge a summary, reverse text (U+202E)",
        "shown as text on the terminal (tabs kept); exact bytes in --json and the result",
        `${agentLines.length} agent lines, raw ESC on the terminal: ${seen.includes("\u001b")}; --json bytes exact: ${raw}; exit ${run.exitCode}`,
        held,
      ),
      seen,
    ).toBe(true);
  }, 180_000);
});

describe("the host-side Python check, attacked by the agent's sources", () => {
  async function check(name: string, source: string): Promise<{ result: AgentResult; ms: number; peakKb: number }> {
    const dir = join(await tempDir(), name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "agent.py"), source);
    let peakKb = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const ps = await execa("ps", ["-o", "rss=", "-C", "python3,python3.11"], { reject: false });
        for (const v of ps.stdout.split("\n").map(Number).filter(Boolean)) peakKb = Math.max(peakKb, v);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const started = Date.now();
    const runner = createRunner();
    try {
      const result = await runner.runAgent({
        agent: join(dir, "agent.py"),
        policy: definePolicy({ name, network: { disabled: true } }),
        outputDir: join(dir, "..", `${name}-out`),
      });
      return { result, ms: Date.now() - started, peakKb };
    } finally {
      sampling = false;
      await sampler;
      await runner.close();
    }
  }

  it.each([
    ["a 12 MB file of one long list", "big-list", () => `x = [${"1,".repeat(6_000_000)}]\n`],
    [
      "a 3.8 MB list (under the file limit, past the memory bound)",
      "mid-list",
      () => `x = [${"1,".repeat(1_900_000)}]\n`,
    ],
    ["3 MB of nested parentheses", "nested", () => `x = ${"(".repeat(1_500_000)}${")".repeat(1_500_000)}\n`],
  ])(
    "%s is an error of the run, within bounded memory",
    async (label, name, make) => {
      const { result, peakKb } = await check(name, make());
      const held =
        result.status === "error" &&
        /too large to check|cannot compile|did not finish|SyntaxError|too many nested/i.test(result.error ?? "") &&
        peakKb < 1.2 * 1024 * 1024;
      expect(
        report.add(
          "limits: python check",
          `compile ${label} on the host`,
          "an error of the run; the checker stays under 1 GiB",
          `${result.status}: ${(result.error ?? "").split("\n")[0]!.slice(0, 70)}; checker peak ${(peakKb / 1024).toFixed(0)} MiB`,
          held,
        ),
        `${result.error} ${peakKb}`,
      ).toBe(true);
    },
    180_000,
  );
});

describe("a burst of runs while a gate is kept ready", () => {
  it("every run gets a namespace, an address and a host name of its own, and leaves no /output volume behind", async () => {
    const before = new Set(await volumes());
    const runner = createRunner();
    try {
      await runner.prepareGates(1);
      await waitUntil(async () => runner.gateReadyNow(), { timeoutMs: 30_000, intervalMs: 50 });
      const probe = `ip=$(awk '/32 host/ { print f } { f = $2 }' /proc/net/fib_trie | grep -v '^127\\.' | sort -u | head -1); echo "ns=$(readlink /proc/self/ns/net) ip=$ip host=$(cat /proc/sys/kernel/hostname)"`;
      const results = await Promise.all(
        Array.from({ length: 5 }, async (_, i) =>
          runner.runAgent({
            command: ["sh", "-c", probe],
            policy: definePolicy({ name: `burst-${i}`, network: { allowedEndpoints: ["localhost:6379"] } }),
            outputDir: join(await tempDir(), `burst-${i}`),
          }),
        ),
      );
      const seen = results.map(
        (r) =>
          Object.fromEntries(
            (/ns=(\S+) ip=(\S*) host=(\S+)/.exec(r.stdout)?.slice(1) ?? []).map((v, k) => [["ns", "ip", "host"][k], v]),
          ) as { ns?: string; ip?: string; host?: string },
      );
      const how = results.map((r) => r.startup?.how ?? "?");
      const distinct = (key: "ns" | "ip" | "host") =>
        new Set(seen.map((s) => s[key]).filter(Boolean)).size === results.length;
      const held =
        results.every((r) => r.status === "succeeded") &&
        how.includes("ready gate") &&
        distinct("ns") &&
        distinct("ip") &&
        distinct("host");
      expect(
        report.add(
          "limits: ready gate",
          "5 runs started at once while one gate is kept ready",
          "each its own network namespace, address and host name",
          `${how.join(", ")}; distinct: ns ${new Set(seen.map((s) => s.ns)).size}, ip ${new Set(seen.map((s) => s.ip)).size}, host ${new Set(seen.map((s) => s.host)).size} of ${results.length}`,
          held,
        ),
        JSON.stringify({ seen, how, out: results.map((r) => r.stdout + r.error) }),
      ).toBe(true);
    } finally {
      await runner.close();
    }
    // The gate that held a run's /output goes after the agent's container that used it.
    await leftoverContainers();
    expect((await volumes()).filter((v) => !before.has(v))).toEqual([]);
  }, 300_000);
});
