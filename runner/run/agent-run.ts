/**
 * One agent run's stages and resources, in the order they happen:
 *
 *   prepare (policy, workspace, bundle, env) → image → gate (rules in force, checked) → start → wait → collect
 *
 * Each stage hands the next what it needs; dispose() releases everything, whatever happened.
 */
import { randomBytes } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Duplex } from "node:stream";
import { RunOptionsError } from "../errors.js";
import { assertDockerReachable, isNotFound, withTimeout } from "../docker/client.js";
import { reapOrphansOnce } from "../docker/cleanup.js";
import type { ContainerState, EngineContainer } from "../docker/engine.js";
import { runLabels } from "../docker/labels.js";
import type { EgressGate } from "../gate/egress-gate.js";
import type { DeniedConnection } from "../gate/denied.js";
import { kafkaPreflight } from "../gate/kafka-preflight.js";
import { openEgressGate } from "../gate/open-gate.js";
import { RESOLV_CONF } from "../gate/plan.js";
import type { ImageSet } from "../images/images.js";
import { trustedImages } from "../images/trust.js";
import type { Policy } from "../policy/index.js";
import type { Runner } from "../runner.js";
import { agentSpec } from "./container-spec.js";
import { toDockerEnv } from "./env.js";
import { engineExitCode, engineWatchdog, stopper, type StopRequest } from "./exit-wait.js";
import { LogCapture, type StreamName } from "./logs.js";
import { outputLimitProblem, outputUsage } from "./output.js";
import { prepareRun, type PreparedRun } from "./prepare.js";
import { openBusRights, type BusRights } from "../bus/rights.js";
import { busAgentToken } from "../bus/patterns.js";
import type { BusDenial } from "../bus/kind.js";
import type { AgentResult, RunStatus } from "./result.js";
import type { RunAgentOptions, RunEvent } from "./run-agent.js";

const DEFAULT_GRACE_MS = 5000;
const DEFAULT_LOG_CAP = 1024 * 1024;
const OUTPUT_CHECK_MS = 250;
/** How long a broker identity outlives the run's timeout and grace (the start and the stop). */
const IDENTITY_MARGIN_MS = 30_000;

interface ChosenImage {
  /** What the container is created from: the image ID (a tag could be moved meanwhile). */
  id: string;
  /** The language's checks that need the image (a Python agent's compile check): run while the gate is set up, awaited before the container is created. */
  checked: Promise<void>;
  /** What the result shows. */
  label: string;
  /** airlock built it (its ID is recorded), so its own init gates it. */
  airlocks: boolean;
}

interface Started {
  container: EngineContainer;
  exited: Promise<{ StatusCode?: number }>;
  streamEnded: Promise<void>;
}

/** One run's resources and state; dispose() releases everything, whatever happened. */
export class AgentRun {
  private readonly runId: string;
  private prepared?: PreparedRun;
  private gate?: EgressGate;
  private container?: EngineContainer;
  private policy?: Policy;
  private image?: string;
  private stdout?: LogCapture;
  private stderr?: LogCapture;
  private ready = false;
  private returnValue: unknown;
  private denied: DeniedConnection[] = [];
  private busRights?: BusRights;
  private busDenied: BusDenial[] = [];
  private readonly secrets: string[] = [];

  constructor(
    private readonly runner: Runner,
    private readonly options: RunAgentOptions,
    private readonly name: string,
    private readonly outputDir: string,
    private readonly base: AgentResult,
    private readonly emit: (event: RunEvent) => void,
  ) {
    // No "." or "/": the id becomes part of topic and subject names ({run}), where they are separators.
    this.runId = `${name.toLowerCase().replace(/[^a-z0-9_-]/g, "-").slice(0, 40)}-${randomBytes(4).toString("hex")}`;
  }

  partial(): Partial<AgentResult> {
    return {
      policy: this.policy ? { name: this.policy.name, source: this.policy.source } : null,
      ...(this.image ? { image: this.image } : {}),
      stdout: this.stdout?.text() ?? "",
      stderr: this.stderr?.text() ?? "",
      ready: this.ready,
      denied: this.denied,
      ...(this.prepared?.workspace.hidden.length ? { workspaceHidden: this.prepared.workspace.hidden } : {}),
      ...(this.busRights?.warnings.length ? { warnings: this.busRights.warnings } : {}),
      ...(this.busRights?.identities.length ? { busIdentities: this.busRights.identities } : {}),
      ...(this.busDenied.length ? { busDenied: this.busDenied } : {}),
      ...(this.returnValue !== undefined ? { returnValue: this.returnValue } : {}),
    };
  }

  private phase(phase: Extract<RunEvent, { type: "phase" }>["phase"], message: string) {
    this.emit({ type: "phase", agent: this.name, phase, message });
  }

  private get graceMs(): number {
    return this.options.stopGraceMs ?? DEFAULT_GRACE_MS;
  }

  async execute(): Promise<AgentResult> {
    const prepared = await this.prepare();
    const images = await this.runner.images((line) => this.emit({ type: "build", agent: this.name, line }));
    const image = await this.chooseImage(prepared, images);
    const expiresAt = Date.now() + prepared.policy.timeoutSeconds * 1000 + this.graceMs + 120_000;
    // Broker identities are minted while the gate is set up. They live as long as the run can (a
    // crashed runner's are swept by name once that has passed).
    const rights = this.openRights(prepared, Date.now() + prepared.policy.timeoutSeconds * 1000 + this.graceMs + IDENTITY_MARGIN_MS).then(async (bus) => {
      await this.kafkaPreflight(prepared, bus.env);
      return bus.env;
    });
    rights.catch(() => {});
    const gate = (this.gate = await this.openGate(prepared, image, images, expiresAt));
    await image.checked;
    // airlock's init takes the credentials with its start line, so minting (Kafka's takes ~100 ms)
    // overlaps the container's start; any other image gets them when its container is created.
    const late = gate.acceptsLateEnv ? rights : undefined;
    if (!late) Object.assign(prepared.env, await rights);
    const started = await this.start(prepared, image, gate, expiresAt, late);
    const exit = await this.waitForExit(prepared.policy, started, gate);
    return this.finish(exit);
  }

  /** kafkajs connects to every broker the cluster advertises: all of them must be in the policy. */
  private async kafkaPreflight(prepared: PreparedRun, busEnv: Record<string, string>): Promise<void> {
    const env = { ...prepared.env, ...busEnv };
    if (!env.KAFKA_BROKERS || prepared.policy.network.disabled) return;
    this.phase("preparing", "checking the Kafka cluster's advertised listeners against the policy");
    const sasl = env.KAFKA_USERNAME && env.KAFKA_PASSWORD ? { username: env.KAFKA_USERNAME, password: env.KAFKA_PASSWORD } : undefined;
    await kafkaPreflight(env.KAFKA_BROKERS, prepared.policy.network.allowedEndpoints, prepared.policy.source, this.options.describeKafka, sasl);
  }

  private async openRights(prepared: PreparedRun, expiresAt: number): Promise<BusRights> {
    if (prepared.policy.bus.grants.length) this.phase("preparing", `minting broker identities (${prepared.policy.bus.grants.map((g) => `${g.kind} at ${g.endpoint.raw}`).join(", ")})`);
    const rights = (this.busRights = await openBusRights({
      policy: prepared.policy,
      runId: this.runId,
      run: this.options.group?.runId ?? this.runId,
      agent: busAgentToken(this.name),
      expiresAt,
      ...(this.options.requireBusRights ? { requireRights: true } : {}),
    }));
    for (const warning of rights.warnings) this.emit({ type: "warning", agent: this.name, message: warning });
    // The agent's credentials never show in its captured output.
    this.secrets.push(...rights.secrets);
    return rights;
  }

  private async prepare(): Promise<PreparedRun> {
    const o = this.options;
    if (!o.agent === !o.command) throw new RunOptionsError("give either agent (a .ts, .js or .py file) or command (argv), not both or neither");
    if (o.image && !o.command) throw new RunOptionsError("image goes with command; an agent file always runs in the airlock agent image");
    if (o.signal?.aborted) throw new RunOptionsError("the run was cancelled before it started");
    this.phase("preparing", "checking policy and agent");
    const prepared = (this.prepared = await prepareRun(
      {
        policy: o.policy,
        ...(o.agent ? { agent: o.agent } : {}),
        ...(o.runtime ? { runtime: o.runtime } : {}),
        ...(o.workingDir !== undefined ? { workingDir: o.workingDir } : {}),
        outputDir: this.outputDir,
        ...(o.env ? { env: o.env } : {}),
        airlockVars: {
          AIRLOCK_AGENT_NAME: this.name,
          AIRLOCK_BUS_AGENT: busAgentToken(this.name),
          AIRLOCK_RUN_ID: this.runId,
          ...(o.group ? { AIRLOCK_GROUP: o.group.name, AIRLOCK_GROUP_RUN_ID: o.group.runId } : {}),
        },
      },
      (policy) => (this.policy = policy),
    ));
    if (prepared.workspace.hidden.length) this.phase("preparing", `kept out of /workspace (they look like secrets; list them in workspace.include to mount them): ${prepared.workspace.hidden.join(", ")}`);
    await assertDockerReachable(this.runner.docker);
    if (this.runner.reapOrphans) await reapOrphansOnce(this.runner.docker);
    this.phase("images", "preparing images");
    return prepared;
  }

  /** The language's image (with the policy's packages), or the caller's image, and whether airlock built it. */
  private async chooseImage(prepared: PreparedRun, images: ImageSet): Promise<ChosenImage> {
    const o = this.options;
    if (!o.image) {
      const ctx = { docker: this.runner.docker, images, progress: (line: string) => this.emit({ type: "build", agent: this.name, line }) };
      const built = await prepared.language.image(ctx, prepared.policy);
      this.image = built.tag;
      const checked = prepared.staged?.check?.(ctx, built) ?? Promise.resolve();
      // Awaited after the gate is open; until then a failure must not count as unhandled.
      checked.catch(() => {});
      return { id: built.id, label: built.tag, airlocks: true, checked };
    }
    this.image = o.image;
    const info = await withTimeout(this.runner.docker.getImage(o.image).inspect(), 15_000, "the engine did not answer an image inspect within 15 s").catch((err: unknown) => {
      if (isNotFound(err)) throw new RunOptionsError(`image ${o.image} is not on this engine`, `build or pull it first (docker pull ${o.image})`);
      throw err;
    });
    return { id: info.Id, label: o.image, airlocks: trustedImages().has(info.Id), checked: Promise.resolve() };
  }

  private async openGate(prepared: PreparedRun, image: ChosenImage, images: ImageSet, expiresAt: number): Promise<EgressGate> {
    this.phase("gate", prepared.policy.network.disabled ? "network disabled" : "setting up the gate");
    return openEgressGate(
      {
        docker: this.runner.docker,
        loopback: this.runner.loopback,
        gatePool: (img, net) => this.runner.gatePool(img, net),
        verifier: (img, labels) => this.runner.verifier(img, labels),
        background: (w) => this.runner.background(w),
      },
      {
        policy: prepared.policy,
        airlockImage: image.airlocks,
        gateImage: images.ids.gate,
        user: prepared.user,
        runId: this.runId,
        hostsPath: join(prepared.runDir, "hosts"),
        holdSeconds: Math.ceil((expiresAt - Date.now()) / 1000),
        labels: runLabels(this.runId, "gate", this.name, expiresAt),
        ...(this.options.resolver ? { resolver: this.options.resolver } : {}),
        onPhase: (m) => this.phase("gate", m),
      },
    );
  }

  /** Create the container, attach to it, start it, and let the gate put its rules in force. */
  private async start(prepared: PreparedRun, image: ChosenImage, gate: EgressGate, expiresAt: number, lateEnv?: Promise<Record<string, string>>): Promise<Started> {
    const o = this.options;
    const { policy } = prepared;
    this.phase("starting", `starting ${this.name}`);
    const resolvPath = join(prepared.runDir, "resolv.conf");
    await writeFile(resolvPath, RESOLV_CONF, { mode: 0o644 });
    const capBytes = o.logCapBytes ?? DEFAULT_LOG_CAP;
    const onLine = (stream: StreamName, line: string) => this.emit({ type: "output", agent: this.name, stream, line });
    const redact = (line: string) => this.secrets.reduce((l, s) => l.split(s).join("[redacted]"), line);
    const onControl = (message: { type: string; value?: unknown }) => {
      if (message.type === "ready" && !this.ready) {
        this.ready = true;
        this.emit({ type: "ready", agent: this.name });
      } else if (message.type === "result") this.returnValue = message.value;
    };
    this.stdout = new LogCapture("stdout", capBytes, onLine, onControl, gate.intercept, redact);
    this.stderr = new LogCapture("stderr", capBytes, onLine, onControl, gate.intercept, redact);

    const container = (this.container = await this.runner.engine.createContainer(
      agentSpec({
        name: `airlock-${this.runId}`,
        image: image.id,
        network: gate.network,
        user: prepared.user,
        env: toDockerEnv(prepared.env),
        // In airlock's images: the runtime runs the bundled agent, or the command replaces it.
        // Any other image keeps its own entrypoint, as `docker run IMAGE CMD` does.
        ...(image.airlocks ? { entrypoint: o.command ? [] : [...prepared.language.runtimeArgv] } : {}),
        cmd: o.command ?? [prepared.staged!.entry],
        workspaceBinds: prepared.workspace.binds,
        outputDir: this.outputDir,
        ...(prepared.bundleDir ? { bundleDir: prepared.bundleDir } : {}),
        hostsFile: join(prepared.runDir, "hosts"),
        resolvConf: resolvPath,
        memoryBytes: policy.resources.memoryBytes,
        cpus: policy.resources.cpus,
        pids: policy.resources.pids,
        maxFileBytes: policy.resources.outputBytes,
        labels: runLabels(this.runId, "agent", this.name, expiresAt),
      }),
    ));
    const stream = await container.attach({ stdin: gate.usesStdin });
    const outPipe = new PassThrough();
    const errPipe = new PassThrough();
    outPipe.pipe(this.stdout.writable());
    errPipe.pipe(this.stderr.writable());
    this.runner.engine.demux(stream, outPipe, errPipe);
    const streamEnded = streamEnd(stream);
    // "next-exit": a container that is created but not started yet counts as not running.
    const exited = container.wait("next-exit");
    exited.catch(() => {});
    gate.beforeStart?.(stream);
    await container.start();
    await gate.open(container, stream, exited, lateEnv);
    return { container, exited, streamEnded };
  }

  private async waitForExit(policy: Policy, started: Started, gate: EgressGate): Promise<{ code: number; state?: ContainerState; stop?: StopRequest; output?: string }> {
    const { container, exited } = started;
    this.phase("running", `${this.name} is running (timeout ${policy.timeoutSeconds}s)`);
    const stops = stopper(container, this.graceMs, (r) => this.phase("stopping", r.why ?? (r.reason === "timed_out" ? `timeout of ${policy.timeoutSeconds}s reached: stopping` : "cancelled: stopping")));
    const timeoutTimer = setTimeout(() => stops.stop("timed_out"), policy.timeoutSeconds * 1000);
    const onAbort = () => stops.stop("cancelled");
    this.options.signal?.addEventListener("abort", onAbort, { once: true });
    // Single files are capped by RLIMIT_FSIZE; what the whole folder costs the host is watched here.
    const limits = { bytes: policy.resources.outputBytes, entries: policy.resources.outputFiles };
    let checking = false;
    const outputWatch = setInterval(() => {
      if (checking) return;
      checking = true;
      void outputUsage(this.outputDir, limits)
        .then((usage) => {
          const problem = outputLimitProblem(usage, limits);
          if (problem) stops.stop("failed", `${problem}: stopping`);
        })
        .finally(() => (checking = false));
    }, OUTPUT_CHECK_MS);
    const watchdog = engineWatchdog(this.runner.engine);
    try {
      const byGate = gate.exited?.then((code) => ({ byGate: true as const, code }));
      const first = await Promise.race([exited.then((w) => ({ byGate: false as const, waited: w }), () => ({ byGate: false as const, waited: undefined })), watchdog.gone, ...(byGate ? [byGate] : [])]);
      let code: number;
      let state: ContainerState | undefined;
      if (first.byGate) {
        // The gate saw the agent exit: its report first (it holds the namespace until then).
        code = first.code;
        this.denied = await gate.collect({ code, stderr: "" });
        // A clean exit is final; anything else (a failure, an OOM kill, a stop) is read from the engine, which knows why.
        if (code !== 0 || stops.requested) {
          await Promise.race([exited.catch(() => undefined), watchdog.gone]);
          state = await withTimeout(container.inspect(), 15_000, "the engine did not answer an inspect within 15 s").catch(() => undefined);
        }
      } else {
        ({ code, state } = await engineExitCode(container, first.waited, watchdog.gone));
      }
      // Let the last lines arrive: the gate marks the end of the agent's output on both streams;
      // otherwise the stream ends (bounded: a detached grandchild can keep it open).
      await Promise.race([started.streamEnded, ...(first.byGate && gate.outputComplete ? [gate.outputComplete] : []), new Promise((r) => setTimeout(r, 2000).unref())]);
      this.stdout!.end();
      this.stderr!.end();
      if (!first.byGate) {
        this.denied = await gate.collect({ code, stderr: this.stderr!.text() });
        if (code !== 0 || stops.requested) state ??= await withTimeout(container.inspect(), 15_000, "the engine did not answer an inspect within 15 s").catch(() => undefined);
      }
      // What the brokers refused the run's identities, while they still exist.
      if (this.busRights) this.busDenied = await withTimeout(this.busRights.denied(), 5000, "a broker did not answer within 5 s").catch(() => []);
      // A burst written just before the exit is caught here.
      const output = stops.requested ? undefined : outputLimitProblem(await outputUsage(this.outputDir, limits), limits);
      return { code, ...(state ? { state } : {}), ...(stops.requested ? { stop: stops.requested } : {}), ...(output ? { output } : {}) };
    } finally {
      watchdog.stop();
      stops.dispose();
      clearTimeout(timeoutTimer);
      clearInterval(outputWatch);
      this.options.signal?.removeEventListener("abort", onAbort);
    }
  }

  private finish(exit: { code: number; state?: ContainerState; stop?: StopRequest; output?: string }): AgentResult {
    this.phase("collecting", "collecting output");
    const status: RunStatus = exit.stop?.reason ?? (exit.output ? "failed" : exit.state?.oomKilled ? "oom" : exit.code === 0 ? "succeeded" : "failed");
    const explained = status === "failed" && !exit.output ? this.prepared?.language.explainFailure?.(this.stderr?.text() ?? "", this.prepared.policy) : undefined;
    const why = exit.stop?.why?.replace(/: stopping$/, "") ?? exit.output ?? explained;
    return { ...this.base, ...this.partial(), status, exitCode: exit.code, ...(why ? { error: why } : {}) };
  }

  async dispose(): Promise<void> {
    // The agent's processes are gone (or killed by the forced removal); the container itself is
    // removed in the background. Bounded: if the engine does not answer, the orphan reaper removes it later.
    if (this.container) this.runner.background(withTimeout(this.container.remove(), 60_000, "the engine did not remove the agent's container within 60 s"));
    // The host rules only ever matched this container's address, which is gone: no need to wait.
    if (this.gate) this.runner.background(this.gate.dispose());
    // The agent is gone: its broker identities go too (their open connections with them).
    if (this.busRights) this.runner.background(withTimeout(this.busRights.revoke(), 30_000, "a broker did not answer the revoke within 30 s"));
    if (this.prepared) await rm(this.prepared.runDir, { recursive: true, force: true }).catch(() => {});
  }
}

function streamEnd(stream: Duplex): Promise<void> {
  return new Promise<void>((res) => {
    stream.on("end", res);
    stream.on("close", res);
    stream.on("error", () => res());
  });
}
