import { existsSync, lstatSync, readFileSync, symlinkSync } from "node:fs";
import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { outputUnpacker, safeRelative } from "../../runner/run/output-tar.js";
import { agentMemoryBytes, outputQuotaBytes, outputTmpfsOptions } from "../../runner/run/output-volume.js";
import { agentSpec, keeperSpec, outputVolumeMount } from "../../runner/backends/docker/container-spec.js";

describe("/output as a filesystem of its own", () => {
  const user = { uid: 10001, gid: 10001 };
  const limits = { bytes: 1_000_000, entries: 50 };

  it("is a tmpfs of the limit (whole pages) with one inode per allowed entry and the folder itself", () => {
    expect(outputQuotaBytes(limits)).toBe(1_003_520);
    expect(outputTmpfsOptions(limits, user)).toBe(
      "size=1003520,nr_inodes=51,uid=10001,gid=10001,mode=0755,nosuid,nodev,noexec",
    );
    const mount = outputVolumeMount(limits, user, { a: "b" }) as unknown as {
      Type: string;
      Source?: string;
      Target: string;
      VolumeOptions: { DriverConfig: { Options: Record<string, string> } };
    };
    expect(mount.Type).toBe("volume");
    // Anonymous: removed with its container.
    expect(mount.Source).toBeUndefined();
    expect(mount.VolumeOptions.DriverConfig.Options).toMatchObject({ type: "tmpfs", device: "tmpfs" });
  });

  it("is charged to the agent's memory on top of the policy's, and never bound from the host", () => {
    expect(agentMemoryBytes(512 << 20, limits)).toBe((512 << 20) + 1_003_520);
    const base = {
      name: "a",
      image: "i",
      network: { mode: "none" as const },
      user,
      env: [],
      cmd: ["x"],
      workspaceBinds: [],
      hostsFile: "/h",
      resolvConf: "/r",
      memoryBytes: 1 << 20,
      cpus: 1,
      pids: 10,
      maxFileBytes: limits.bytes,
      labels: {},
    };
    const own = agentSpec({ ...base, output: { limits } }).HostConfig!;
    expect(own.Memory).toBe((1 << 20) + 1_003_520);
    expect(own.Binds!.some((b) => b.includes("/output"))).toBe(false);
    expect((own.Mounts as unknown as { Target: string }[]).map((m) => m.Target)).toEqual(["/output"]);
    const joined = agentSpec({ ...base, output: { limits, keeper: "k1" } }).HostConfig!;
    expect(joined.VolumesFrom).toEqual(["k1:rw"]);
    expect(joined.Mounts).toBeUndefined();
    const keeper = keeperSpec({ name: "k", image: "g", user, limits, holdSeconds: 60, labels: {} });
    expect(keeper.HostConfig).toMatchObject({ NetworkMode: "none", CapDrop: ["ALL"], ReadonlyRootfs: true });
    expect(keeper.User).toBe("10001:10001");
  });
});

describe("unpacking an agent's /output", () => {
  async function unpack(
    entries: {
      name: string;
      type?: "file" | "directory" | "symlink" | "link" | "fifo";
      body?: string;
      linkname?: string;
    }[],
    limits = { bytes: 1 << 20, entries: 100 },
  ) {
    const dir = await mkdtemp(join(tmpdir(), "airlock-unpack-"));
    const pack = tar.pack();
    const { sink, result } = outputUnpacker(dir, limits);
    const done = pipeline(pack as unknown as NodeJS.ReadableStream, sink);
    for (const e of entries) {
      await new Promise<void>((r, j) =>
        pack.entry(
          { name: e.name, type: e.type ?? "file", ...(e.linkname ? { linkname: e.linkname } : {}) },
          e.body ?? "",
          (err) => (err ? j(err) : r()),
        ),
      );
    }
    pack.finalize();
    await done;
    return { dir, result: await result };
  }

  it("writes files and folders, and nothing but them, only below the output folder", async () => {
    const { dir, result } = await unpack([
      { name: "./", type: "directory" },
      { name: "./report.json", body: "{}" },
      { name: "./sub/", type: "directory" },
      { name: "./sub/deep.txt", body: "deep" },
      { name: "./link", type: "symlink", linkname: "/etc/passwd" },
      { name: "./hard", type: "link", linkname: "/etc/shadow" },
      { name: "./fifo", type: "fifo" },
      { name: "../escape.txt", body: "x" },
      { name: "/etc/evil", body: "x" },
      { name: "./sub/../../up.txt", body: "x" },
    ]);
    expect(readFileSync(join(dir, "report.json"), "utf8")).toBe("{}");
    expect(readFileSync(join(dir, "sub/deep.txt"), "utf8")).toBe("deep");
    expect((await readdir(dir)).sort()).toEqual(["report.json", "sub"]);
    expect(existsSync(join(dir, "..", "escape.txt"))).toBe(false);
    expect(lstatSync(join(dir, "sub")).isDirectory()).toBe(true);
    expect(result.files).toBe(2);
    expect(result.skipped.map((s) => s.reason)).toEqual([
      expect.stringContaining("symlink"),
      expect.stringContaining("link"),
      expect.stringContaining("fifo"),
      "a path outside the output folder",
      "a path outside the output folder",
      "a path outside the output folder",
    ]);
  });

  it("stops at the policy's byte and entry limits, and says which", async () => {
    // Counted as the host's disk spends it: whole 4 KiB blocks per file.
    const big = await unpack(
      [
        { name: "a", body: "x".repeat(5000) },
        { name: "b", body: "y".repeat(600) },
      ],
      { bytes: 8192, entries: 10 },
    );
    expect(existsSync(join(big.dir, "a"))).toBe(true);
    expect(existsSync(join(big.dir, "b"))).toBe(false);
    expect(big.result.problem).toMatch(/more than 8192 bytes on the host.s disk \(resources.output\)/);
    const many = await unpack([{ name: "a" }, { name: "b" }, { name: "c" }], { bytes: 8192, entries: 2 });
    expect(many.result.problem).toMatch(/more than 2 entries/);
    expect(existsSync(join(many.dir, "c"))).toBe(false);
  });

  it("never follows a link an earlier run left in the host's output folder", async () => {
    const outside = await mkdtemp(join(tmpdir(), "airlock-outside-"));
    const dir = await mkdtemp(join(tmpdir(), "airlock-unpack-"));
    symlinkSync(outside, join(dir, "sub"));
    symlinkSync(join(outside, "target.txt"), join(dir, "file.txt"));
    const pack = tar.pack();
    const { sink, result } = outputUnpacker(dir, { bytes: 1 << 20, entries: 100 });
    const done = pipeline(pack as unknown as NodeJS.ReadableStream, sink);
    pack.entry({ name: "sub/evil.txt" }, "x");
    pack.entry({ name: "file.txt" }, "y");
    pack.entry({ name: "ok.txt" }, "z");
    pack.finalize();
    await done;
    const r = await result;
    expect(await readdir(outside)).toEqual([]);
    expect(readFileSync(join(dir, "ok.txt"), "utf8")).toBe("z");
    expect(r.skipped.map((s) => s.reason)).toEqual([
      expect.stringContaining("a link in the way"),
      expect.stringContaining("a link in the way"),
    ]);
  });

  it("reads archive names as relative paths or not at all", () => {
    expect(safeRelative("./a/b")).toBe("a/b");
    expect(safeRelative("a/b/")).toBe("a/b");
    expect(safeRelative("../a")).toBeUndefined();
    expect(safeRelative("a/../../b")).toBeUndefined();
    expect(safeRelative("/abs")).toBeUndefined();
    expect(safeRelative(".")).toBeUndefined();
  });
});
