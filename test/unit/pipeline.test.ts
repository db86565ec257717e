/**
 * The run pipeline against a fake engine: what runAgent() asks of the engine and what it makes of
 * the answers (exit codes, streamed lines, timeouts, cancels), with no daemon. The integration
 * suite does the same against the real engine.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, type Duplex } from "node:stream";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { createRunner } from "../../runner/index.js";
import type { ImageSet } from "../../runner/internal.js";
import type { ContainerState, Engine, EngineContainer } from "../../runner/backends/docker/engine/engine.js";
import { emptyArchive, fakeEngineWith } from "./fake-engine.js";
import { LABEL } from "../../runner/labels.js";

type Program = (io: { out: (line: string) => void; exit: (code: number) => void; signals: string[] }) => void;

/** An engine whose containers run `program` when started; signals are recorded and can end them. */
function fakeEngine(program: Program, onSignal?: (signal: string, exit: (code: number) => void) => void) {
  const created: Docker.ContainerCreateOptions[] = [];
  const removed: string[] = [];
  const signals: string[] = [];
  let n = 0;
  const engine: Engine = fakeEngineWith(async (spec) => {
    created.push(spec);
    const id = `c${++n}`;
    const stream = new PassThrough() as unknown as Duplex;
    let exitCode: number | undefined;
    let resolveExit!: (v: { StatusCode: number }) => void;
    const exited = new Promise<{ StatusCode: number }>((r) => (resolveExit = r));
    const exit = (code: number) => {
      if (exitCode !== undefined) return;
      exitCode = code;
      stream.end();
      resolveExit({ StatusCode: code });
    };
    const c: EngineContainer = {
      id,
      attach: async () => stream,
      // The output keeper only sleeps; the agent's container runs the program.
      start: async () =>
        void (
          spec.Entrypoint?.[0] !== "sleep" &&
          setImmediate(() => program({ out: (l) => stream.write(`${l}\n`), exit, signals }))
        ),
      wait: () => exited,
      kill: async (signal) => {
        signals.push(signal);
        if (onSignal) onSignal(signal, exit);
        else if (signal === "SIGKILL") exit(137);
      },
      remove: async () => void removed.push(id),
      rename: async () => {},
      archive: emptyArchive,
      inspect: async (): Promise<ContainerState> => ({
        running: exitCode === undefined,
        exitCode: exitCode ?? 0,
        oomKilled: false,
        pid: 0,
        networks: {},
        paused: false,
        startedAt: "",
        execs: 0,
        config: "",
      }),
    };
    return c;
  });
  return { engine, created, removed, signals };
}

const images: ImageSet = {
  base: "base",
  baseSource: "local",
  gate: "airlock/gate:x",
  agent: "airlock/agent:x",
  ids: { gate: "sha256:gate", agent: "sha256:agent" },
};
const docker = {
  version: async () => ({ Version: "fake", ApiVersion: "1.41" }),
  listContainers: async () => [],
} as unknown as Docker;

async function setup(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "airlock-pipeline-"));
  await writeFile(join(dir, "agent.ts"), "console.log('hi');\n");
  return dir;
}

describe("the run pipeline, on a fake engine", () => {
  it("creates one hardened container with no network, streams its lines, and reports its exit code", async () => {
    const fake = fakeEngine(({ out, exit }) => {
      out("first line");
      out("second line");
      setTimeout(() => exit(3), 10);
    });
    const runner = createRunner({ docker, engine: fake.engine, images: async () => images, reapOrphans: false });
    const dir = await setup();
    const lines: string[] = [];
    const result = await runner.runAgent({
      agent: join(dir, "agent.ts"),
      policy: { name: "p" },
      outputDir: join(dir, "out"),
      onEvent: (e) => e.type === "output" && lines.push(e.line),
    });
    expect(result).toMatchObject({ status: "failed", exitCode: 3, image: "airlock/agent:x" });
    expect(lines).toEqual(["first line", "second line"]);
    expect(result.stdout).toBe("first line\nsecond line\n");
    // The output keeper (it holds /output until it is copied out), the agent's container, then a
    // keeper kept ready for the next run of this kind.
    expect(fake.created).toHaveLength(3);
    const [keeper, spec, ready] = fake.created as [
      Docker.ContainerCreateOptions,
      Docker.ContainerCreateOptions,
      Docker.ContainerCreateOptions,
    ];
    expect(keeper).toMatchObject({
      Image: "sha256:gate",
      Entrypoint: ["sleep"],
      HostConfig: { NetworkMode: "none", CapDrop: ["ALL"] },
    });
    expect(spec.Image).toBe("sha256:agent");
    expect(spec.HostConfig).toMatchObject({
      NetworkMode: "none",
      CapDrop: ["ALL"],
      ReadonlyRootfs: true,
      VolumesFrom: ["c1:rw"],
    });
    expect(spec.HostConfig!.Binds!.some((b) => b.endsWith(":/workspace:ro"))).toBe(false);
    expect(ready.name).toMatch(/^airlock-keeper-/);
    // The next run takes the ready keeper: only its own container is created on its path.
    await runner.runAgent({ agent: join(dir, "agent.ts"), policy: { name: "p" }, outputDir: join(dir, "out2") });
    expect(fake.created[3]!.HostConfig).toMatchObject({ VolumesFrom: ["c3:rw"] });
    await runner.close();
    expect([...fake.removed].sort()).toEqual(["c1", "c2", "c3", "c4", "c5"]);
  });

  it("replaces, once, every container whose process the engine lost: the output keeper's and the agent's", async () => {
    const fake = fakeEngine(({ out, exit }) => {
      out("kept going");
      setTimeout(() => exit(0), 10);
    });
    const create = fake.engine.createContainer.bind(fake.engine);
    // The first start of each kind of container (output keeper, agent) is lost, as a freshly started engine under load does.
    const lost: string[] = [];
    fake.engine.createContainer = async (spec) => {
      const c = await create(spec);
      const role = spec.Labels?.[LABEL.role] ?? "";
      if (lost.includes(role)) return c;
      lost.push(role);
      return {
        ...c,
        start: async () =>
          Promise.reject(new Error("(HTTP code 500) server error - cannot start a stopped process: unknown")),
      };
    };
    const runner = createRunner({ docker, engine: fake.engine, images: async () => images, reapOrphans: false });
    const dir = await setup();
    const result = await runner.runAgent({
      agent: join(dir, "agent.ts"),
      policy: { name: "p" },
      outputDir: join(dir, "out"),
    });
    expect(result).toMatchObject({ status: "succeeded", exitCode: 0, stdout: "kept going\n" });
    expect(lost).toEqual(["output", "agent"]);
    // Two of each (the lost one and its replacement, under the same name), then the keeper kept ready for the next run.
    const names = fake.created.map((c) => c.name ?? "");
    expect(names.slice(0, 4).map((n) => n.replace(/^airlock-.*?(-output)?$/, "run$1"))).toEqual([
      "run-output",
      "run-output",
      "run",
      "run",
    ]);
    expect(names[0]).toBe(names[1]);
    expect(names[2]).toBe(names[3]);
    expect(names.slice(4)).toEqual([expect.stringMatching(/^airlock-keeper-/)]);
    await runner.close();
    // Each lost container is removed, as is each replacement once the run is over.
    expect(fake.removed.length).toBe(fake.created.length);
  });

  it("stops an agent at its timeout: SIGTERM, then SIGKILL after the grace", async () => {
    const fake = fakeEngine(({ out }) => out("ignoring SIGTERM"));
    const runner = createRunner({ docker, engine: fake.engine, images: async () => images, reapOrphans: false });
    const dir = await setup();
    const result = await runner.runAgent({
      agent: join(dir, "agent.ts"),
      policy: { name: "p", timeoutSeconds: 1 },
      outputDir: join(dir, "out"),
      stopGraceMs: 50,
    });
    expect(result).toMatchObject({ status: "timed_out", exitCode: 137 });
    expect(fake.signals).toEqual(["SIGTERM", "SIGKILL"]);
    await runner.close();
  });

  it("cancels on the caller's signal and keeps the agent's own exit code", async () => {
    const fake = fakeEngine(
      () => {},
      (signal, exit) => signal === "SIGTERM" && exit(143),
    );
    const runner = createRunner({ docker, engine: fake.engine, images: async () => images, reapOrphans: false });
    const dir = await setup();
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    const result = await runner.runAgent({
      agent: join(dir, "agent.ts"),
      policy: { name: "p" },
      outputDir: join(dir, "out"),
      signal: stop.signal,
    });
    expect(result).toMatchObject({ status: "cancelled", exitCode: 143 });
    expect(fake.signals).toEqual(["SIGTERM"]);
    await runner.close();
  });
});
