/**
 * The warm pool against a fake engine and a clock the test moves: what it hands out (only sandboxes
 * that are exactly what was started, each once), what it removes (the dead, the tampered with, the
 * idle, everything on close) and when it starts more. The security suite does the same against the
 * real engine (test/integration/security/warm-pool.test.ts).
 */
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, type Duplex } from "node:stream";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import type { ContainerState, Engine, EngineContainer } from "../../runner/backends/docker/engine/engine.js";
import { LABEL } from "../../runner/labels.js";
import { WarmPool, type PoolClock } from "../../runner/backends/docker/sandbox/pool.js";
import { Sandbox, type SandboxShape } from "../../runner/backends/docker/sandbox/sandbox.js";
import { emptyArchive, fakeEngineWith } from "./fake-engine.js";

interface FakeSandbox {
  id: string;
  spec: Docker.ContainerCreateOptions;
  state: ContainerState;
  stream: PassThrough;
  exit(code: number): void;
  removed: boolean;
}

function fakeEngine() {
  const containers: FakeSandbox[] = [];
  const watchers = new Set<(e: { id: string; action: string }) => void>();
  const report = (id: string, action: string) =>
    watchers.forEach((w) => {
      w({ id, action });
    });
  const engine: Engine = fakeEngineWith(
    async (spec) => {
      const stream = new PassThrough();
      let resolveExit!: (v: { StatusCode: number }) => void;
      const exited = new Promise<{ StatusCode: number }>((r) => (resolveExit = r));
      const fake: FakeSandbox = {
        id: `c${containers.length + 1}`,
        spec,
        stream,
        state: {
          running: false,
          exitCode: 0,
          oomKilled: false,
          pid: 0,
          networks: { airlock: { ip: "10.0.0.2", mac: "m" } },
          paused: false,
          startedAt: "",
          execs: 0,
          config: JSON.stringify(spec),
        },
        exit: (code) => {
          fake.state = { ...fake.state, running: false, exitCode: code };
          resolveExit({ StatusCode: code });
        },
        removed: false,
      };
      containers.push(fake);
      const c: EngineContainer = {
        id: fake.id,
        attach: async () => stream as unknown as Duplex,
        start: async () =>
          void (fake.state = {
            ...fake.state,
            running: true,
            pid: 100 + containers.length,
            startedAt: `t${containers.length}`,
          }),
        wait: () => exited,
        kill: async () => fake.exit(137),
        remove: async () => {
          fake.removed = true;
          fake.exit(137);
        },
        rename: async () => {},
        archive: emptyArchive,
        inspect: async () => ({ ...fake.state }),
      };
      return c;
    },
    {
      watch: async (_labels, onEvent) => {
        watchers.add(onEvent);
        return () => watchers.delete(onEvent);
      },
    },
  );
  return { engine, containers, report };
}

function fakeClock(): PoolClock & { advance(ms: number): void } {
  let now = Date.now();
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    now: () => now,
    setTimer(fn, ms) {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return () => void (t.live = false);
    },
    advance(ms) {
      now += ms;
      for (const t of timers.filter((t) => t.live && t.at <= now)) {
        t.live = false;
        t.fn();
      }
    },
  };
}

const shape: SandboxShape = {
  image: "sha256:agent",
  standby: ["node", "/opt/airlock/dist/standby.js"],
  user: { uid: 10001, gid: 10001 },
  memoryBytes: 512 << 20,
  cpus: 1,
  pids: 256,
  output: { bytes: 1 << 30, entries: 10_000 },
};
const far = () => Date.now();

async function setup(size = 2, idleSeconds = 60) {
  const fake = fakeEngine();
  const clock = fakeClock();
  const dir = await mkdtemp(join(tmpdir(), "airlock-pool-test-"));
  const pool = new WarmPool({ engine: fake.engine, network: async () => "airlock", clock }, { size, idleSeconds, dir });
  return { ...fake, clock, pool, dir };
}

const live = (c: FakeSandbox[]) => c.filter((x) => !x.removed);

describe("the warm pool", () => {
  it("starts a shape's sandboxes after its first (cold) claim, then hands each out once, checked, and never again", async () => {
    const { pool, containers, clock } = await setup(2);
    expect(await pool.claim(shape, far())).toEqual({ cold: "no pooled sandbox of this shape was ready" });
    await pool.idle();
    expect(pool.readyCount(shape)).toBe(2);
    // Each is a gated sandbox of the shape, labelled as the pool's, with nothing of any run in it.
    for (const c of containers) {
      expect(c.spec.Entrypoint).toEqual(["/opt/airlock/init"]);
      expect(c.spec.Cmd).toEqual(shape.standby);
      expect(c.spec.Env).toEqual(["AIRLOCK_SLOT_USER=10001:10001", "PYTHONUNBUFFERED=1"]);
      expect(c.spec.Labels).toMatchObject({ [LABEL.managed]: "true", [LABEL.role]: "sandbox", [LABEL.run]: "pool" });
      expect(c.spec.HostConfig?.Memory).toBe(shape.memoryBytes + shape.output.bytes);
    }
    const first = await pool.claim(shape, far());
    const second = await pool.claim(shape, far());
    expect("pooled" in first && "pooled" in second).toBe(true);
    if (!("pooled" in first) || !("pooled" in second)) return;
    expect(first.pooled.sandbox.container.id).not.toBe(second.pooled.sandbox.container.id);
    // Both taken: the next run is cold, and replacements start only after the claiming runs had their turn.
    expect(await pool.claim(shape, far())).toMatchObject({ cold: expect.stringMatching(/no pooled sandbox|taken/) });
    const before = containers.length;
    clock.advance(1000);
    await pool.idle();
    expect(containers.length).toBeGreaterThan(before);
    const ids = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const c = await pool.claim(shape, far());
      if ("pooled" in c) ids.add(c.pooled.sandbox.container.id);
    }
    expect(ids.has(first.pooled.sandbox.container.id) || ids.has(second.pooled.sandbox.container.id)).toBe(false);
  });

  it.each([
    ["it exited", (c: FakeSandbox) => c.exit(1)],
    ["something was run in it", (c: FakeSandbox) => void (c.state.execs = 1)],
    ["it was restarted", (c: FakeSandbox) => void (c.state = { ...c.state, pid: 999, startedAt: "later" })],
    ["its configuration changed", (c: FakeSandbox) => void (c.state.config = "changed")],
    ["it is paused", (c: FakeSandbox) => void (c.state.paused = true)],
    ["it wrote output before its claim", (c: FakeSandbox) => void c.stream.write("hello\n")],
  ])("never hands out a sandbox when %s: it is removed and replaced", async (_why, tamper) => {
    const { pool, containers } = await setup(1);
    await pool.claim(shape, far());
    await pool.idle();
    const [victim] = live(containers);
    tamper(victim!);
    await new Promise((r) => setImmediate(r));
    const claim = await pool.claim(shape, far());
    expect("cold" in claim).toBe(true);
    expect(victim!.removed).toBe(true);
    await pool.idle();
    // A replacement was started (at once after a dead one, or after the claim's miss).
    expect(live(containers).length).toBeGreaterThanOrEqual(1);
  });

  it.each([["exec_create"], ["attach"], ["update"], ["extract-to-dir"], ["pause"]])(
    "never hands out a sandbox the engine reports %s on before its claim (but a look, top, is fine)",
    async (action) => {
      const { pool, containers, report } = await setup(2);
      await pool.claim(shape, far());
      await pool.idle();
      const [touched, looked] = live(containers);
      // Each got airlock's own create, attach and start: those do not count.
      for (const c of [touched!, looked!]) for (const a of ["create", "attach", "start"]) report(c.id, a);
      report(touched!.id, action);
      report(looked!.id, "top");
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const c = await pool.claim(shape, far());
        if ("pooled" in c) ids.push(c.pooled.sandbox.container.id);
      }
      expect(ids).toEqual([looked!.id]);
      expect(touched!.removed).toBe(true);
    },
  );

  it("never hands out a sandbox whose host folder was written to", async () => {
    const { pool, containers, dir } = await setup(1);
    await pool.claim(shape, far());
    await pool.idle();
    const [folder] = await readdir(dir);
    await writeFile(join(dir, folder!, "bundle", "agent.mjs"), "planted");
    expect("cold" in (await pool.claim(shape, far()))).toBe(true);
    expect(containers[0]!.removed).toBe(true);
  });

  it("retires sandboxes not claimed within the idle lifetime, and stops replacing them once the shape is not wanted", async () => {
    const { pool, containers, clock } = await setup(2, 60);
    await pool.claim(shape, far());
    await pool.idle();
    expect(pool.readyCount(shape)).toBe(2);
    clock.advance(60_000);
    await pool.idle();
    expect(pool.readyCount(shape)).toBe(0);
    expect(live(containers)).toHaveLength(0);
  });

  it("keeps a run whose timeout outlives a pooled sandbox's deadline cold, and the sandbox for another run", async () => {
    const { pool } = await setup(1);
    await pool.claim(shape, far());
    await pool.idle();
    const claim = await pool.claim(shape, Date.now() + 48 * 3600 * 1000);
    expect(claim).toEqual({ cold: "the run's timeout is longer than a pooled sandbox may live" });
    expect(pool.readyCount(shape)).toBe(1);
  });

  it("gives a sandbox of another shape to no one: shapes are kept apart", async () => {
    const { pool } = await setup(1);
    await pool.claim(shape, far());
    await pool.idle();
    expect("cold" in (await pool.claim({ ...shape, memoryBytes: shape.memoryBytes * 2 }, far()))).toBe(true);
    expect("cold" in (await pool.claim({ ...shape, user: { uid: 1000, gid: 1000 } }, far()))).toBe(true);
    expect(pool.readyCount(shape)).toBe(1);
  });

  it("close() removes every pooled sandbox and its folder, starts no more, and can be called twice", async () => {
    const { pool, containers, dir } = await setup(3);
    await pool.claim(shape, far());
    await pool.idle();
    await pool.close();
    await pool.close();
    expect(live(containers)).toHaveLength(0);
    expect(await readdir(dir)).toEqual([]);
    expect(await pool.claim(shape, far())).toEqual({ cold: "the pool is closed" });
  });
});

describe("a sandbox's start", () => {
  const lost = () =>
    Promise.reject(new Error("(HTTP code 500) server error - cannot start a stopped process: unknown"));
  const losing = (engine: Engine, times: number): Engine => {
    const create = engine.createContainer.bind(engine);
    let left = times;
    return {
      ...engine,
      createContainer: async (spec) => ({ ...(await create(spec)), ...(left-- > 0 ? { start: lost } : {}) }),
    };
  };

  it("replaces, once, a sandbox whose process the engine lost before its start, and connects the replacement", async () => {
    const fake = fakeEngine();
    const connected: string[] = [];
    const sandbox = await Sandbox.start(
      losing(fake.engine, 1),
      { name: "airlock-run" },
      { beforeStart: async (s) => void connected.push(s.container.id) },
    );
    expect(sandbox.container.id).toBe("c2");
    // Each was connected before its start; the lost one is removed and its stream closed.
    expect(connected).toEqual(["c1", "c2"]);
    expect(fake.containers.map((c) => [c.id, c.removed, c.stream.destroyed])).toEqual([
      ["c1", true, true],
      ["c2", false, false],
    ]);
  });

  it("throws the engine's error when the replacement is lost too, and leaves neither behind", async () => {
    const fake = fakeEngine();
    await expect(Sandbox.start(losing(fake.engine, 2), { name: "airlock-run" })).rejects.toThrow(
      /cannot start a stopped process/,
    );
    expect(fake.containers.map((c) => c.removed)).toEqual([true, true]);
  });
});
