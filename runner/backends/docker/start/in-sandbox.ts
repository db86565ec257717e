/**
 * Starting an agent in an image airlock built: in a sandbox (sandbox/), either claimed from the
 * warm pool or started now while the gate is set up. The sandbox's init is the gate: it gets its
 * rules, then the agent's command line and variables (credentials included) once it is up.
 */
import { cp, mkdir, writeFile } from "node:fs/promises";
import { runLabels } from "../../../labels.js";
import { goLine } from "../../../gate/protocol.js";
import type { EgressGate } from "../gate/egress-gate.js";
import { moveInto, type SandboxFolder } from "../sandbox/folder.js";
import type { PooledSandbox } from "../sandbox/pool.js";
import { Sandbox, type SandboxShape } from "../sandbox/sandbox.js";
import { sandboxSpec } from "../sandbox/shape.js";
import { startMode } from "../sandbox/start-mode.js";
import {
  networkFiles,
  openRunGate,
  pipeStreams,
  writeResolvConf,
  type Captures,
  type StartContext,
  type StartedAgent,
} from "./context.js";

/** A pooled sandbox this run can use; or none (the reason goes into the result's startup). */
export async function claimPooled(ctx: StartContext, shape: SandboxShape): Promise<PooledSandbox | undefined> {
  const { docker, run, prepared } = ctx;
  const pool = docker.warmPool;
  if (!pool) return undefined;
  const cold = (why: string) => void (run.startup.coldBecause = why);
  // What a pooled sandbox mounts was fixed when it was created.
  if (prepared.workspace.binds.length)
    return cold("a working directory is mounted only into a container created for its run");
  const claim = await pool.claim(shape, ctx.expiresAt);
  if ("cold" in claim) return cold(claim.cold);
  // Its name says which run it is now (what `airlock cleanup` reads), in the background.
  docker.background(claim.pooled.sandbox.container.rename(`airlock-${run.runId}`));
  return claim.pooled;
}

/** The agent in a sandbox: `pooled`, or one started now; released once its rules are in force. */
export async function startInSandbox(
  ctx: StartContext,
  start: { shape: SandboxShape; pooled?: PooledSandbox },
): Promise<StartedAgent> {
  const { docker, run, prepared, image, rights } = ctx;
  const { language } = prepared;
  const { pooled } = start;
  run.startup.how = pooled ? "pooled sandbox" : "new sandbox";
  // The gate, then the sandbox's streams into the run's captures and its rules into its stdin: for a
  // sandbox started now, before its start (so the init finds them as it comes up).
  let gate: EgressGate | undefined;
  let captures: Captures | undefined;
  // A sandbox replaced before its start (the engine lost its process) is connected to the same gate and captures.
  const connect = async (sandbox: Sandbox, hostsPath: string) => {
    gate ??= await openRunGate(ctx, { hostsPath });
    sandbox.claim();
    captures ??= run.openCaptures(gate.intercept);
    pipeStreams(docker, sandbox.stream, captures);
    gate.beforeStart?.(sandbox.stream);
  };
  let starting: Promise<Sandbox>;
  let bundled = Promise.resolve();
  let refusalsDir: string;
  if (pooled) {
    const folder: SandboxFolder = (run.held.folder = pooled.folder);
    refusalsDir = folder.refusalsDir;
    run.startup.mode = "warm";
    run.mark("claimed");
    run.held.container = pooled.sandbox.container;
    // The agent's code goes into the sandbox's folder while its rules are put in force (before the
    // start line); after the language's check, which reads the bundle where it was staged.
    const bundleDir = prepared.bundleDir;
    const trustDir = prepared.https?.trustDir;
    bundled = Promise.all([
      bundleDir ? image.checked.then(() => moveInto(bundleDir, folder.bundleDir)) : undefined,
      trustDir ? cp(trustDir, folder.trustDir, { recursive: true }) : undefined,
    ]).then(() => {});
    // Awaited before the start line; until then a rejection must not count as unhandled.
    bundled.catch(() => {});
    starting = connect(pooled.sandbox, folder.hostsFile).then(() => pooled.sandbox);
  } else {
    run.phase("starting", `starting ${run.name}'s sandbox`);
    // Bind sources must exist when the container is created; the gate writes the hosts file in place.
    const files = networkFiles(prepared);
    const { hostsPath, resolvPath } = files;
    refusalsDir = files.refusalsDir;
    await Promise.all([
      writeFile(hostsPath, "", { mode: 0o644 }),
      writeResolvConf(resolvPath),
      mkdir(refusalsDir, { mode: 0o755 }),
    ]);
    const network = await docker.network();
    starting = Sandbox.start(
      docker.engine,
      sandboxSpec(start.shape, {
        name: `airlock-${run.runId}`,
        network: network.name,
        workspaceBinds: prepared.workspace.binds,
        ...(prepared.bundleDir ? { bundleDir: prepared.bundleDir } : {}),
        hostsFile: hostsPath,
        resolvConf: resolvPath,
        ...(prepared.https ? { trustDir: prepared.https.trustDir } : {}),
        refusalsDir,
        labels: runLabels(run.runId, "agent", run.name, ctx.expiresAt),
      }),
      {
        onCreated: (c) => ((run.held.container = c), run.mark("created")),
        beforeStart: (sandbox) => connect(sandbox, hostsPath),
        onStarted: () => run.mark("started"),
      },
    );
    // Awaited below; until then a rejection must not count as unhandled.
    starting.catch(() => {});
  }
  const sandbox = await starting;
  const argv = run.options.command ?? [...language.runtimeArgv, prepared.staged!.entry];
  const mode = startMode(language, argv, prepared.env);
  const opened = gate!;
  await opened.open(sandbox.container, sandbox.stream, sandbox.exited, {
    line: async () => {
      // The language's checks (a Python agent's compile check) and the agent's code in place, before it may start.
      await Promise.all([image.checked, bundled]);
      return goLine(mode, argv, { ...prepared.env, ...(await rights) });
    },
    ...(pooled ? { state: pooled.state } : {}),
  });
  run.mark("released");
  return {
    started: { container: sandbox.container, exited: sandbox.exited, streamEnded: sandbox.streamEnded },
    gate: opened,
    outputHolder: "sandbox",
    captures: captures!,
    refusalsDir,
  };
}
