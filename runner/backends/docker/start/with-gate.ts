/**
 * Starting an agent in a container created for its run, joined to a gate container's network
 * namespace (a gate kept ready, or one started now): any image airlock did not build, and an image
 * airlock built when a ready gate is faster than a sandbox. With the network disabled, no gate at
 * all. /output is held by the gate container (default limits) or an output keeper.
 */
import { mkdir } from "node:fs/promises";
import { startOrRemove, startReplacingLost } from "../engine/lost-start.js";
import type { EngineContainer } from "../engine/engine.js";
import { runLabels } from "../../../labels.js";
import { toDockerEnv } from "../../../run/env.js";
import { agentUser } from "../../../run/output.js";
import { DEFAULT_OUTPUT_LIMITS, sameOutputLimits } from "../../../run/output-volume.js";
import { agentSpec, keeperSpec } from "../container-spec.js";
import { streamEnd, type Started } from "../exit-watch.js";
import type { EgressGate } from "../gate/egress-gate.js";
import type { TakenGate } from "../gate/gate-container.js";
import type { KeeperKind } from "../output-keepers.js";
import {
  networkFiles,
  openRunGate,
  outputLimits,
  pipeStreams,
  writeResolvConf,
  type Captures,
  type StartContext,
  type StartedAgent,
} from "./context.js";

export async function startWithGate(ctx: StartContext, readyGate?: TakenGate): Promise<StartedAgent> {
  const { docker, run, prepared, image } = ctx;
  // A gate container holds an /output volume of the default limits (and the runner's agent user);
  // any other run gets an output keeper, started while the gate is set up.
  const user = agentUser();
  const gateHolds =
    !prepared.policy.network.disabled &&
    sameOutputLimits(outputLimits(prepared), DEFAULT_OUTPUT_LIMITS) &&
    prepared.user.uid === user.uid &&
    prepared.user.gid === user.gid;
  const keeper = gateHolds ? Promise.resolve(undefined) : startKeeper(ctx);
  // Awaited before the agent's container is created; until then a rejection must not count as unhandled.
  keeper.catch(() => {});
  const gate = await openRunGate(ctx, {
    hostsPath: networkFiles(prepared).hostsPath,
    ...(readyGate ? { readyGate } : {}),
  });
  let holder = await keeper;
  if (gateHolds && gate.network.mode === "gate-container")
    holder = run.held.outputHolder = docker.engine.container(gate.network.gateId);
  else if (gateHolds) holder = await startKeeper(ctx);
  await image.checked;
  Object.assign(prepared.env, await ctx.rights);
  const { started, captures } = await createAndStart(ctx, gate, holder!);
  return { started, gate, outputHolder: holder!, captures, refusalsDir: networkFiles(prepared).refusalsDir };
}

/** The kind of output keeper this run needs. */
const keeperKind = (ctx: StartContext): KeeperKind => ({
  image: ctx.images.ids.gate,
  user: ctx.prepared.user,
  limits: outputLimits(ctx.prepared),
});

/** The container that owns this run's /output volume and holds it until the runner copied it out: one kept ready, or one started now. */
async function startKeeper(ctx: StartContext): Promise<EngineContainer> {
  const { docker, run, prepared, expiresAt } = ctx;
  const kind = keeperKind(ctx);
  const { keeper } = await docker.outputKeepers.take(kind, expiresAt, () =>
    startReplacingLost(async () => {
      const fresh = await docker.engine.createContainer(
        keeperSpec({
          name: `airlock-${run.runId}-output`,
          image: kind.image,
          user: prepared.user,
          limits: kind.limits,
          holdSeconds: Math.ceil((expiresAt - Date.now()) / 1000),
          labels: runLabels(run.runId, "output", run.name, expiresAt),
        }),
      );
      run.held.keeper = fresh;
      await startOrRemove(fresh);
      return fresh;
    }),
  );
  run.held.keeper = keeper;
  return keeper;
}

/** Create the agent's container, attach to it, start it, and let the gate put its rules in force. */
async function createAndStart(
  ctx: StartContext,
  gate: EgressGate,
  holder: EngineContainer,
): Promise<{ started: Started; captures: Captures }> {
  const { docker, run, prepared, image } = ctx;
  const o = run.options;
  const { policy } = prepared;
  run.phase("starting", `starting ${run.name}`);
  const { hostsPath, resolvPath, refusalsDir } = networkFiles(prepared);
  await Promise.all([writeResolvConf(resolvPath), mkdir(refusalsDir, { mode: 0o755 })]);
  const captures = run.openCaptures(gate.intercept);

  const spec = agentSpec({
    name: `airlock-${run.runId}`,
    image: image.id,
    network: gate.network,
    user: prepared.user,
    env: toDockerEnv(prepared.env),
    // In airlock's images (network disabled): the runtime runs the bundled agent, or the command replaces it.
    // Any other image keeps its own entrypoint, as `docker run IMAGE CMD` does.
    ...(image.airlocks ? { entrypoint: o.command ? [] : [...prepared.language.runtimeArgv] } : {}),
    cmd: o.command ?? [prepared.staged!.entry],
    workspaceBinds: prepared.workspace.binds,
    output: { limits: outputLimits(prepared), keeper: holder.id },
    ...(prepared.bundleDir ? { bundleDir: prepared.bundleDir } : {}),
    hostsFile: hostsPath,
    resolvConf: resolvPath,
    ...(prepared.https ? { trustDir: prepared.https.trustDir } : {}),
    refusalsDir,
    memoryBytes: policy.resources.memoryBytes,
    cpus: policy.resources.cpus,
    pids: policy.resources.pids,
    maxFileBytes: policy.resources.outputBytes,
    labels: runLabels(run.runId, "agent", run.name, ctx.expiresAt),
  });
  // A container whose process the engine lost before its start is replaced once. Its stream is read
  // only once it started (what it wrote meanwhile waits in the stream), so the captures see one container.
  const { container, stream, exited } = await startReplacingLost(async () => {
    const created = (run.held.container = await docker.engine.createContainer(spec));
    run.mark("created");
    const attached = await created.attach({ stdin: gate.usesStdin });
    // "next-exit": a container that is created but not started yet counts as not running.
    const waited = created.wait("next-exit");
    // Awaited by the exit watch; until then a rejection must not count as unhandled.
    waited.catch(() => {});
    try {
      await created.start();
    } catch (err) {
      attached.destroy();
      // A leftover is labelled and the orphan sweep removes it.
      await created.remove().catch(() => {});
      throw err;
    }
    return { container: created, stream: attached, exited: waited };
  });
  pipeStreams(docker, stream, captures);
  const streamEnded = streamEnd(stream);
  run.mark("started");
  await gate.open(container, stream, exited);
  run.mark("released");
  // The next run of this kind finds its output keeper started.
  if (run.held.keeper) docker.outputKeepers.refill(keeperKind(ctx));
  return { started: { container, exited, streamEnded }, captures };
}
