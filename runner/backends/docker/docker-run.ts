/**
 * An agent run on Docker, its stages in the order they happen (the shared ones are in
 * run/run-stages.ts), each handing the next what it needs:
 *
 *   prepare → image → start (start/: a sandbox claimed from the warm pool or started now, or a
 *   container joined to a gate container) with the gate's rules in force and checked → start line →
 *   wait → collect
 *
 * An agent in an image airlock built runs in a sandbox (sandbox/): a gated container started before
 * anything of the run reaches it, so a cold run starts its container while it sets up the gate and
 * mints broker identities, and a warm run claims one a pool started earlier. Any other image, and a
 * run with the network disabled, gets its container created for it with a gate container
 * (gate/container-gate.ts) or no network. What a start creates is held (held.ts) until dispose().
 */
import { folderSink } from "../../run/refusal-feed.js";
import { engineErrorsExplained } from "./engine/client.js";
import type { RunRequest } from "../backend.js";
import { RunStages } from "../../run/run-stages.js";
import type { AgentResult } from "../../run/result.js";
import type { DockerBackend } from "./docker-backend.js";
import { watchUntilExit } from "./exit-watch.js";
import { HeldResources } from "./held.js";
import { chooseImage } from "./image-choice.js";
import { sandboxShape } from "./sandbox/shape.js";
import { outputLimits, type StartContext, type StartedAgent } from "./start/context.js";
import { claimPooled, startInSandbox } from "./start/in-sandbox.js";
import { startWithGate } from "./start/with-gate.js";

/** One Docker run; dispose() releases what it holds, whatever happened. */
export class DockerRun extends RunStages {
  private readonly held = new HeldResources();

  constructor(
    /** The engine's state this run uses: network, images, ready gates and sandboxes, output keepers. */
    private readonly docker: DockerBackend,
    r: RunRequest,
  ) {
    super(r);
  }

  /** The stages below; the engine going away midway is explained as such (images are built by the local engine on either backend). */
  execute(): Promise<AgentResult> {
    return engineErrorsExplained(() => this.stages());
  }

  private async stages(): Promise<AgentResult> {
    const prepared = await this.prepare(async () => {
      await this.docker.engineReachable();
      if (this.docker.reapOrphans) await this.docker.reapOrphansOnce();
    });
    this.mark("prepared");
    const progress = (line: string) => this.emit({ type: "build", agent: this.name, line });
    const images = await this.docker.images(progress);
    if (this.options.image) this.record.imageIs(this.options.image);
    const image = await chooseImage(
      { docker: this.docker.docker, images, progress, builds: this.docker.builds },
      prepared,
      this.options.image,
    );
    this.record.imageIs(image.label);
    this.mark("image");
    const expiresAt = Date.now() + prepared.policy.timeoutSeconds * 1000 + this.graceMs + 120_000;
    // Broker identities are minted while the sandbox starts and the gate is set up.
    const rights = this.mintRights(prepared);
    void rights.then(
      () => this.mark("rights"),
      // The failure is the start's: it awaits the rights before the agent may run.
      () => {},
    );
    const { started, gate, outputHolder, captures, refusalsDir } = await this.startAgent({
      docker: this.docker,
      run: this.startingRun(),
      prepared,
      image,
      images,
      expiresAt,
      rights,
    });
    // The agent's refusals so far, at /run/airlock in its sandbox, until it exits.
    this.gateRefusedSoFar = () => gate.refusedSoFar();
    await this.refusalFeed.attach(folderSink(refusalsDir));
    const exit = await watchUntilExit({
      engine: this.docker.engine,
      started,
      gate,
      policy: prepared.policy,
      graceMs: this.graceMs,
      output: { dir: this.outputDir, limits: outputLimits(prepared), holder: outputHolder },
      captures,
      name: this.name,
      phase: (phase, message) => this.phase(phase, message),
      ...(this.options.signal ? { signal: this.options.signal } : {}),
    });
    this.record.gateDenied(exit.denied);
    for (const note of exit.outputNotes) this.warn(note);
    if (exit.copied?.written)
      this.record.outputCopied({
        files: exit.copied.written,
        bytes: exit.copied.bytes ?? 0,
        special: exit.copied.special ?? [],
      });
    await this.readBusDenials();
    return this.finish(prepared, {
      code: exit.code,
      ...(exit.state?.oomKilled ? { oomKilled: true } : {}),
      ...(exit.stop ? { stop: exit.stop } : {}),
      ...(exit.output ? { output: exit.output } : {}),
    });
  }

  /** What a start (start/) sees of this run. */
  private startingRun(): StartContext["run"] {
    return {
      runId: this.runId,
      name: this.name,
      options: this.options,
      startup: this.record.startup,
      held: this.held,
      mark: (stage) => this.mark(stage),
      phase: (phase, message) => this.phase(phase, message),
      openCaptures: (intercept) => this.openCaptures(intercept),
    };
  }

  /**
   * The fastest safe way to an agent's first line, in order: a sandbox from the warm pool; a
   * container joined to a gate the runner keeps ready (its namespace exists already: no network to
   * set up); a sandbox started now. Other images, and runs without network, get a container of their
   * own with a gate container (or none).
   */
  private async startAgent(ctx: StartContext): Promise<StartedAgent> {
    const { prepared, image } = ctx;
    if (!image.airlocks || prepared.policy.network.disabled) return startWithGate(ctx);
    const shape = sandboxShape(image.id, prepared.language, prepared.policy, prepared.user);
    const pooled = await claimPooled(ctx, shape);
    if (pooled) return startInSandbox(ctx, { shape, pooled });
    const ended = this.docker.startBegan();
    try {
      const readyGate = this.docker.takeReadyGate();
      if (readyGate) {
        this.record.startup.how = "ready gate";
        return await startWithGate(ctx, readyGate);
      }
      return await startInSandbox(ctx, { shape });
    } finally {
      // The next run finds a gate namespace ready (a container joined to it starts faster than one with a network of its own).
      this.docker.keepGateReady(ctx.images.ids.gate);
      ended();
    }
  }

  async dispose(): Promise<void> {
    this.held.release((work) => this.docker.background(work));
    // The agent is gone: its broker identities go too.
    await this.releaseShared();
  }
}
