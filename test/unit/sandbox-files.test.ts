import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { splitTarget, UsageError } from "../../runner/cli/commands/run.js";
import { TrustedImages } from "../../runner/images/trust.js";
import { findSecrets, looksSecret, workspaceMounts } from "../../runner/run/workspace.js";
import { waitUntil } from "../../runner/util/wait-until.js";

describe("workspace", () => {
  it("finds secret-looking entries, skips templates and dependencies, and lets workspace.include through", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-ws-"));
    for (const f of [
      ".env",
      ".env.local",
      ".env.example",
      "config/prod.pem",
      "config/app.json",
      "src/index.ts",
      ".npmrc",
      "node_modules/x/key.pem",
      ".git/config",
      "deploy/.env.test",
    ]) {
      await mkdir(join(dir, f, ".."), { recursive: true });
      await writeFile(join(dir, f), "x");
    }
    await mkdir(join(dir, ".ssh"));
    await writeFile(join(dir, ".ssh", "id_ed25519"), "k");
    expect((await findSecrets(dir, [])).map((s) => s.path)).toEqual([
      ".env",
      ".env.local",
      ".git/config",
      ".npmrc",
      ".ssh",
      "config/prod.pem",
      "deploy/.env.test",
    ]);
    expect((await findSecrets(dir, ["deploy/.env.test", "*.pem"])).map((s) => s.path)).toEqual([
      ".env",
      ".env.local",
      ".git/config",
      ".npmrc",
      ".ssh",
    ]);
    const mounts = await workspaceMounts(dir, [], "/tmp/empty");
    expect(mounts.binds[0]).toBe(`${dir}:/workspace:ro`);
    expect(mounts.binds).toContain("/dev/null:/workspace/.env:ro");
    expect(mounts.binds).toContain("/tmp/empty:/workspace/.ssh:ro");
    expect(await workspaceMounts(undefined, [], "/tmp/empty")).toEqual({ binds: [], hidden: [] });
    expect([looksSecret("id_rsa.pub", false), looksSecret("README.md", false), looksSecret(".aws", true)]).toEqual([
      true,
      false,
      true,
    ]);
  });
});

describe("trusted images", () => {
  it("trusts exactly the IDs recorded, across instances, in a file only its owner can read", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "airlock-trust-")), "state", "trusted-images.json");
    const a = new TrustedImages(file);
    expect(a.has("sha256:1")).toBe(false);
    a.add("sha256:1", "airlock/agent:x", "agent-image");
    expect(new TrustedImages(file).has("sha256:1")).toBe(true);
    expect(new TrustedImages(file).has("sha256:2")).toBe(false);
    const { statSync } = await import("node:fs");
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe("airlock run's operands", () => {
  it("takes an agent file, or a command after --, never both", () => {
    expect(splitTarget("agent.ts", [], ["node", "airlock", "run", "agent.ts", "-p", "p.yaml"])).toEqual({
      agent: "agent.ts",
    });
    expect(
      splitTarget("python3", ["x.py"], ["node", "airlock", "run", "-p", "p.yaml", "--", "python3", "x.py"]),
    ).toEqual({ command: ["python3", "x.py"] });
    expect(() => splitTarget("agent.ts", ["python3"], ["node", "airlock", "run", "agent.ts", "--", "python3"])).toThrow(
      UsageError,
    );
    expect(() => splitTarget(undefined, [], ["node", "airlock", "run"])).toThrow(/give the agent file/);
  });
});

describe("waitUntil", () => {
  it("polls on the clock it is given, and says when time ran out", async () => {
    let now = 0;
    const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
    let calls = 0;
    await expect(waitUntil(() => ++calls >= 3 && "done", { timeoutMs: 100, intervalMs: 10, clock })).resolves.toBe(
      "done",
    );
    await expect(
      waitUntil(() => false, { timeoutMs: 50, intervalMs: 10, clock, onTimeout: () => new Error("late") }),
    ).rejects.toThrow("late");
    expect(now).toBeGreaterThanOrEqual(70);
  });
});
