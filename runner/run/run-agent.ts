/**
 * runAgent(): run one agent in a policy-gated container and collect its result.
 *
 *   policy → bundle → images → gate (rules in force) → agent → wait (timeout/cancel) → collect → clean up
 *
 * Never throws for a run that could not happen (bad policy, Docker missing, build failed): the result
 * has status "error" and the reason. The containers are always removed.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, extname, join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import type Docker from "dockerode";
import { AirlockError, DockerUnavailableError, GateError, RunOptionsError } from "../errors.js";
import { assertDockerReachable, dockerClient, engineAddress, explainDockerError, isConnectionError, withTimeout } from "../docker/client.js";
import { reapOrphansOnce } from "../docker/cleanup.js";
import { LABEL, runLabels } from "../docker/labels.js";
import { ensureNetwork } from "../docker/network.js";
import { readDenied, type DeniedConnection } from "../gate/denied.js";
import { loopbackMode, openHostLoopback, type HostLoopback } from "../gate/host-loopback.js";
import { InitGate } from "../gate/init-gate.js";
import { type StartedGate } from "../gate/gate-container.js";
import { gatePool } from "../gate/pool.js";
import { kafkaPreflight, type DescribeCluster } from "../gate/kafka-preflight.js";
import { hostsFile, planGate, RESOLV_CONF, type Resolver } from "../gate/plan.js";
import { ipv4Rules, ipv6Rules } from "../gate/rules.js";
import { ensureImages, ensurePackagesImage } from "../images/images.js";
import { definePolicy, loadPolicy, type Policy, type PolicyInput } from "../policy/index.js";
import { bundleAgent } from "./bundle.js";
import { agentSpec, RUNTIME_ARGV, type AgentNetwork } from "./container-spec.js";
import { agentEnvironment, toDockerEnv } from "./env.js";
import { LogCapture, type StreamName } from "./logs.js";
import { agentUser, collectOutput, outputSize, prepareOutputDir, SANDBOX_UID } from "./output.js";
import { emptyResult, writeResult, type AgentResult, type RunStatus } from "./result.js";

export interface RunAgentOptions {
  /** A .ts or .js agent file. Either this or `command`. */
  agent?: string;
  /** Run anything else: argv inside the container (in `image`, default the agent image). */
  command?: string[];
  image?: string;
  /** A policy file, a loaded Policy, or a policy object (validated like a file). */
  policy: string | Policy | PolicyInput;
  /** Host folder mounted read-write at /output. Created if missing. */
  outputDir: string;
  /** Host folder mounted read-only at /workspace. Default: the current folder. */
  workingDir?: string;
  /** Values for the variables the policy's env.allow lists (instead of the caller's environment). */
  env?: Record<string, string>;
  /** Aborting stops the agent: SIGTERM, then SIGKILL after the grace. */
  signal?: AbortSignal;
  /** Name in logs and results. Default: from the agent file (its folder for agent.ts/index.ts). */
  name?: string;
  /** Progress, output lines and readiness, as they happen. airlock itself prints nothing. */
  onEvent?: (event: RunEvent) => void;
  /** Time between SIGTERM and SIGKILL. Default 5000 ms. */
  stopGraceMs?: number;
  /** stdout and stderr kept in the result, per stream. Default 1 MiB. */
  logCapBytes?: number;
  /** Docker client to use (default: DOCKER_HOST or the local socket). */
  docker?: Docker;
  /** How DNS names in the policy are resolved on the host (for tests). */
  resolver?: Resolver;
  /** Set by runAgents(): the group this agent runs in (AIRLOCK_GROUP, AIRLOCK_GROUP_RUN_ID). */
  group?: { name: string; runId: string };
  /** How the Kafka preflight reads the cluster's advertised brokers (for tests). */
  describeKafka?: DescribeCluster;
}

export type RunEvent =
  | { type: "phase"; agent: string; phase: "preparing" | "images" | "gate" | "starting" | "running" | "stopping" | "collecting"; message: string }
  | { type: "build"; agent: string; line: string }
  | { type: "output"; agent: string; stream: StreamName; line: string }
  | { type: "ready"; agent: string }
  | { type: "finished"; agent: string; result: AgentResult };

const DEFAULT_GRACE_MS = 5000;
const DEFAULT_LOG_CAP = 1024 * 1024;

export function agentNameFor(options: Pick<RunAgentOptions, "agent" | "name">, policy?: { name: string }): string {
  if (options.name) return options.name;
  if (options.agent) {
    const stem = basename(options.agent, extname(options.agent));
    const generic = ["agent", "index", "main"].includes(stem);
    return (generic ? basename(dirname(resolve(options.agent))) : stem) || "agent";
  }
  return policy?.name ?? "agent";
}

export async function runAgent(options: RunAgentOptions): Promise<AgentResult> {
  const started = Date.now();
  const outputDir = resolve(options.outputDir);
  const name = agentNameFor(options, typeof options.policy === "object" ? (options.policy as { name: string }) : undefined);
  const emit = (event: RunEvent) => {
    try {
      options.onEvent?.(event);
    } catch {
      // a listener's bug must not break the run
    }
  };
  const base = emptyResult(name, outputDir, "error", new Date(started));
  const run = new AgentRun(options, name, outputDir, base, emit);
  let result: AgentResult;
  try {
    result = await run.execute();
  } catch (err) {
    const error = err instanceof AirlockError ? err : isConnectionError(err) ? explainDockerError(err) : err;
    result = {
      ...base,
      ...run.partial(),
      status: "error",
      error: error instanceof Error ? error.message : String(error),
      errorCode: error instanceof AirlockError ? error.code : "INTERNAL",
    };
  } finally {
    await run.dispose();
  }
  const collected = await collectOutput(outputDir).catch(() => undefined);
  if (collected) {
    result.outputFiles = collected.files;
    result.outputSkipped = collected.skipped;
    result.outputBytes = collected.bytes;
  }
  result.finishedAt = new Date().toISOString();
  result.durationMs = Date.now() - started;
  await mkdir(dirname(result.resultFile), { recursive: true })
    .then(() => writeResult(result))
    .catch(() => {});
  emit({ type: "finished", agent: name, result });
  return result;
}

const removals = new Set<Promise<unknown>>();

/**
 * Removing a finished run's containers is left to run on after runAgent() returns: the engine's
 * network teardown takes tens of milliseconds the result does not need. The pending request keeps
 * this process alive until the engine has done it, and a crash is covered by the orphan reaper.
 */
function inBackground(work: Promise<unknown>): void {
  const done = work.catch(() => {}).finally(() => removals.delete(done));
  removals.add(done);
}

/** Gates are auto-removed by the engine once stopped: sending the kill is enough. */
function stopGate(gate: StartedGate): void {
  inBackground(withTimeout(gate.container.kill({ signal: "SIGKILL" }), 30_000, "the engine did not stop the gate within 30 s").catch(() => gate.container.remove({ force: true })));
}

/** Resolves when the containers of every finished run are gone (the CLI waits for it before exiting). */
export async function containersRemoved(): Promise<void> {
  while (removals.size) await Promise.all([...removals]);
}

/** One run's resources and state; dispose() releases everything, whatever happened. */
class AgentRun {
  private readonly runId: string;
  private runDir?: string;
  private docker?: Docker;
  private gate?: StartedGate;
  private initGate?: InitGate;
  private agentContainer?: Docker.Container;
  private loopback?: HostLoopback;
  private policy?: Policy;
  private image?: string;
  private stdout?: LogCapture;
  private stderr?: LogCapture;
  private ready = false;
  private returnValue: unknown;
  private denied: DeniedConnection[] = [];

  constructor(
    private readonly options: RunAgentOptions,
    private readonly name: string,
    private readonly outputDir: string,
    private readonly base: AgentResult,
    private readonly emit: (event: RunEvent) => void,
  ) {
    this.runId = `${name.toLowerCase().replace(/[^a-z0-9_.-]/g, "-").slice(0, 40)}-${randomBytes(4).toString("hex")}`;
  }

  partial(): Partial<AgentResult> {
    return {
      policy: this.policy ? { name: this.policy.name, source: this.policy.source } : null,
      ...(this.image ? { image: this.image } : {}),
      stdout: this.stdout?.text() ?? "",
      stderr: this.stderr?.text() ?? "",
      ready: this.ready,
      denied: this.denied,
      ...(this.returnValue !== undefined ? { returnValue: this.returnValue } : {}),
    };
  }

  private phase(phase: Extract<RunEvent, { type: "phase" }>["phase"], message: string) {
    this.emit({ type: "phase", agent: this.name, phase, message });
  }

  async execute(): Promise<AgentResult> {
    const o = this.options;
    if (!o.agent === !o.command) throw new RunOptionsError("give either agent (a .ts/.js file) or command (argv), not both or neither");
    if (o.image && !o.command) throw new RunOptionsError("image goes with command; an agent file always runs in the airlock agent image");
    if (o.signal?.aborted) throw new RunOptionsError("the run was cancelled before it started");

    this.phase("preparing", "checking policy and agent");
    const policy = (this.policy = await resolvePolicy(o.policy));
    const workingDir = resolve(o.workingDir ?? ".");
    const wd = await stat(workingDir).catch(() => undefined);
    if (!wd?.isDirectory()) throw new RunOptionsError(`working directory ${workingDir} does not exist or is not a folder`, "pass an existing folder as workingDir (it is mounted read-only at /workspace)");
    if (process.getuid?.() === 0 && (wd.mode & 0o005) !== 0o005) {
      // Root's agents run as an unprivileged uid, which needs to read the folder.
      throw new RunOptionsError(
        `working directory ${workingDir} is not readable by the sandbox user (uid ${SANDBOX_UID}; mode ${(wd.mode & 0o777).toString(8)})`,
        `make it readable (chmod o+rx ${workingDir}), or pass another workingDir`,
      );
    }

    this.runDir = await mkdtemp(join(tmpdir(), "airlock-"));
    await chmod(this.runDir, 0o755);
    let bundleDir: string | undefined;
    if (o.agent) {
      bundleDir = join(this.runDir, "bundle");
      await mkdir(bundleDir, { mode: 0o755 });
      await bundleAgent(o.agent, policy, bundleDir);
    }
    const user = agentUser();
    await prepareOutputDir(this.outputDir, user);
    const env = agentEnvironment(policy, o.env, process.env, {
      AIRLOCK_AGENT_NAME: this.name,
      AIRLOCK_RUN_ID: this.runId,
      AIRLOCK_OUTPUT_DIR: "/output",
      AIRLOCK_WORKSPACE: "/workspace",
      ...(o.group ? { AIRLOCK_GROUP: o.group.name, AIRLOCK_GROUP_RUN_ID: o.group.runId } : {}),
      AIRLOCK_ALLOWED_ENDPOINTS: policy.network.disabled ? "" : policy.network.allowedEndpoints.map((e) => e.raw).join(","),
      HOME: "/tmp",
    });

    if (env.KAFKA_BROKERS && !policy.network.disabled) {
      this.phase("preparing", "checking the Kafka cluster's advertised listeners against the policy");
      await kafkaPreflight(env.KAFKA_BROKERS, policy.network.allowedEndpoints, policy.source, o.describeKafka);
    }

    const docker = (this.docker = o.docker ?? dockerClient());
    await assertDockerReachable(docker);
    await reapOrphansOnce(docker);

    this.phase("images", "preparing images");
    const images = await ensureImages(docker, (line) => this.emit({ type: "build", agent: this.name, line }));
    this.image = o.image ?? (await ensurePackagesImage(docker, images.agent, policy.packages, (line) => this.emit({ type: "build", agent: this.name, line })));

    const graceMs = o.stopGraceMs ?? DEFAULT_GRACE_MS;
    const expiresAt = Date.now() + policy.timeoutSeconds * 1000 + graceMs + 120_000;
    const hostsPath = join(this.runDir, "hosts");
    const resolvPath = join(this.runDir, "resolv.conf");
    await writeFile(resolvPath, RESOLV_CONF, { mode: 0o644 });

    // The agent image (and images built from it) gate themselves: one container, whose init applies
    // the rules before the agent runs. Any other image gets a gate container whose namespace it joins.
    const selfGated = !o.image || (await isSelfGating(docker, o.image));
    let network: AgentNetwork = { mode: "none" };
    let rules: { v4: string; v6: string } | undefined;
    if (!policy.network.disabled) {
      this.phase("gate", `gating egress to ${policy.network.allowedEndpoints.map((e) => e.raw).join(", ")}`);
      const plan = await planGate(policy.network.allowedEndpoints, policy.source, o.resolver);
      await writeFile(hostsPath, hostsFile(plan), { mode: 0o644 });
      const bridge = await ensureNetwork(docker);
      const loopback = (this.loopback = await openHostLoopback(loopbackMode(), bridge, plan.loopback, this.runId));
      rules = {
        v4: ipv4Rules({
          gateway: bridge.gateway,
          forwarded: plan.loopback.map((route, i) => ({ port: route.port, forwarderPort: loopback.gatewayPorts[i]! })),
          direct: plan.direct,
        }),
        v6: ipv6Rules(),
      };
      if (selfGated) {
        this.initGate = new InitGate();
        network = { mode: "gated", network: bridge.name };
      } else {
        this.gate = await gatePool(docker, images.gate, bridge.name).acquire({ ...rules, holdSeconds: Math.ceil((expiresAt - Date.now()) / 1000) });
        // Named after its run from now on (a pooled gate starts with a neutral name).
        void this.gate.container.rename({ name: `airlock-${this.runId}-gate` }).catch(() => {});
        await loopback.allow(this.gate.ip);
        network = { mode: "gate-container", gateId: this.gate.id };
      }
    } else {
      await writeFile(hostsPath, "127.0.0.1\tlocalhost\n", { mode: 0o644 });
    }

    this.phase("starting", `starting ${this.name}`);
    const capBytes = o.logCapBytes ?? DEFAULT_LOG_CAP;
    const onLine = (stream: StreamName, line: string) => this.emit({ type: "output", agent: this.name, stream, line });
    const onControl = (message: { type: string; value?: unknown }) => {
      if (message.type === "ready" && !this.ready) {
        this.ready = true;
        this.emit({ type: "ready", agent: this.name });
      } else if (message.type === "result") this.returnValue = message.value;
    };
    this.stdout = new LogCapture("stdout", capBytes, onLine, onControl, this.initGate?.intercept);
    this.stderr = new LogCapture("stderr", capBytes, onLine, onControl);

    const container = (this.agentContainer = await docker.createContainer(
      agentSpec({
        name: `airlock-${this.runId}`,
        image: this.image,
        network,
        user,
        env: toDockerEnv(env),
        // In the agent image: the runtime runs the bundled agent, or the command replaces it.
        ...(selfGated ? { entrypoint: o.command ? [] : RUNTIME_ARGV } : {}),
        cmd: o.command ?? ["/opt/agent/run/agent.mjs"],
        workingDir,
        outputDir: this.outputDir,
        ...(bundleDir ? { bundleDir } : {}),
        hostsFile: hostsPath,
        resolvConf: resolvPath,
        memoryBytes: policy.resources.memoryBytes,
        cpus: policy.resources.cpus,
        pids: policy.resources.pids,
        maxFileBytes: policy.resources.outputBytes,
        labels: runLabels(this.runId, "agent", this.name, expiresAt),
      }),
    ));
    const stream = (await container.attach({ stream: true, stdout: true, stderr: true, ...(this.initGate ? { stdin: true, hijack: true } : {}) })) as unknown as NodeJS.ReadWriteStream;
    const outPipe = new PassThrough();
    const errPipe = new PassThrough();
    outPipe.pipe(this.stdout.writable());
    errPipe.pipe(this.stderr.writable());
    docker.modem.demuxStream(stream, outPipe, errPipe);
    const streamEnded = new Promise<void>((res) => {
      stream.on("end", res);
      stream.on("close", res);
      stream.on("error", () => res());
    });

    // "next-exit": a container that is created but not started yet counts as not running.
    const exited = container.wait({ condition: "next-exit" });
    await container.start();
    if (this.initGate && rules && network.mode === "gated") {
      // The init applies its rules while the host side is set up for this container's address;
      // it starts the agent only on the second line.
      stream.write(this.initGate.rulesLine(rules, user));
      if (this.loopback?.gatewayPorts.length) {
        const ip = (await container.inspect()).NetworkSettings.Networks[network.network]?.IPAddress;
        if (!ip) throw new GateError("the agent's container has no address on the airlock network", "check the engine's health (docker info)");
        await this.loopback.allow(ip);
      }
      stream.write(InitGate.GO);
    }
    this.phase("running", `${this.name} is running (timeout ${policy.timeoutSeconds}s)`);

    // Stop on timeout or cancel: SIGTERM, then SIGKILL after the grace.
    let stopReason: RunStatus | undefined;
    let stopError: string | undefined;
    const stop = (reason: RunStatus, why?: string) => {
      if (stopReason) return;
      stopReason = reason;
      stopError = why;
      this.phase("stopping", why ?? (reason === "timed_out" ? `timeout of ${policy.timeoutSeconds}s reached: stopping` : "cancelled: stopping"));
      container.kill({ signal: "SIGTERM" }).catch(() => {});
      killTimer = setTimeout(() => container.kill({ signal: "SIGKILL" }).catch(() => {}), graceMs);
    };
    let killTimer: NodeJS.Timeout | undefined;
    const timeoutTimer = setTimeout(() => stop("timed_out"), policy.timeoutSeconds * 1000);
    const onAbort = () => stop("cancelled");
    o.signal?.addEventListener("abort", onAbort, { once: true });
    // Single files are capped by RLIMIT_FSIZE; the total is watched here.
    const limit = policy.resources.outputBytes;
    const outputWatch = setInterval(() => {
      void outputSize(this.outputDir).then((bytes) => {
        if (bytes > limit) stop("failed", `output limit exceeded: ${bytes} bytes written, the policy allows ${limit} (resources.output): stopping`);
      });
    }, 1000);

    let exitCode: number;
    // A clean exit reported by the gated init is final: no need to wait for the engine to tear the
    // container's network down (about 50 ms) before the result is ready.
    let cleanExit = false;
    exited.catch(() => {});
    const watchdog = engineWatchdog(docker);
    try {
      const reported = this.initGate?.exited.then((code) => ({ StatusCode: code, byInit: true }));
      const first = (await Promise.race([exited, watchdog.gone, ...(reported ? [reported] : [])])) as { StatusCode?: unknown; byInit?: boolean } | undefined;
      cleanExit = first?.byInit === true && first.StatusCode === 0 && !stopReason;
      // Anything else (a failure, an OOM kill, a stop) is read from the engine, which knows why.
      const waited = first?.byInit && !cleanExit ? ((await Promise.race([exited, watchdog.gone])) as { StatusCode?: unknown } | undefined) : first;
      if (typeof waited?.StatusCode === "number") exitCode = waited.StatusCode;
      else {
        // The wait ended without an answer (its connection was cut): ask again, or report the engine gone.
        await assertDockerReachable(docker);
        const state = (await container.inspect()).State;
        exitCode = state.Running ? ((await Promise.race([container.wait({ condition: "not-running" }), watchdog.gone])) as { StatusCode: number }).StatusCode : state.ExitCode;
      }
    } finally {
      watchdog.stop();
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      clearInterval(outputWatch);
      o.signal?.removeEventListener("abort", onAbort);
    }
    // Let the last lines arrive (bounded: a detached grandchild can keep the stream open).
    await Promise.race([streamEnded, new Promise((r) => setTimeout(r, 2000).unref())]);
    this.stdout.end();
    this.stderr.end();

    this.phase("collecting", "collecting output");
    // Every engine call after the exit is bounded: a run never hangs on one request.
    const [info] = await Promise.all([
      cleanExit ? undefined : withTimeout(container.inspect(), 15_000, "the engine did not answer an inspect within 15 s").catch(() => undefined),
      this.gate ? readDenied(this.gate).then((d) => (this.denied = d)).catch(() => {}) : undefined,
    ]);
    if (this.initGate) {
      const failure = InitGate.failure(exitCode, this.stderr.text());
      if (failure) throw failure;
      this.denied = this.initGate.denied();
    }
    const status: RunStatus = stopReason ?? (info?.State.OOMKilled ? "oom" : exitCode === 0 ? "succeeded" : "failed");
    return { ...this.base, ...this.partial(), status, exitCode, ...(stopError ? { error: stopError.replace(/: stopping$/, "") } : {}) };
  }

  async dispose(): Promise<void> {
    const docker = this.docker;
    // The agent's processes are gone (or killed by the forced removal); the container itself is
    // removed in the background. Bounded: if the engine does not answer, the orphan reaper removes it later.
    if (docker && this.agentContainer) {
      inBackground(withTimeout(this.agentContainer.remove({ force: true }), 60_000, "the engine did not remove the agent's container within 60 s"));
    }
    // The gate is auto-removed by the engine once stopped: killing it is enough, and it spares the
    // run the bridge teardown (~100 ms) even if this process exits right after.
    if (docker && this.gate) {
      this.gate.detach();
      stopGate(this.gate);
    }
    // The host rule only ever matched this container's address, which is gone: no need to wait.
    if (this.loopback) inBackground(this.loopback.close());
    if (this.runDir) await rm(this.runDir, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * A request that is waiting on the engine does not always fail when the engine goes away, so while
 * an agent runs the engine is pinged; two failed pings in a row end the wait with a clear error.
 */
function engineWatchdog(docker: Docker, everyMs = 2000): { gone: Promise<never>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let stopped = false;
  const gone = new Promise<never>((_, reject) => {
    const tick = () => {
      if (stopped) return;
      withTimeout(docker.ping(), 3000, "the engine did not answer a ping within 3 s")
        .then(() => (failures = 0))
        .catch((err: unknown) => {
          failures++;
          if (failures >= 2) {
            const cause = explainDockerError(err, engineAddress(docker));
            reject(new DockerUnavailableError(`lost the engine while the agent was running (${cause.message.replace(/^Docker engine not reachable: /, "").split("\n")[0]})`, "check that dockerd is running (docker info); once it is back, `airlock cleanup` removes what this run left", err));
          }
        })
        .finally(() => {
          if (!stopped) timer = setTimeout(tick, everyMs);
        });
    };
    timer = setTimeout(tick, everyMs);
  });
  gone.catch(() => {});
  return {
    gone,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

const selfGatingImages = new Map<string, Promise<boolean>>();

/** Whether `image` is the agent image or built from it (it carries the in-container gate). */
function isSelfGating(docker: Docker, image: string): Promise<boolean> {
  let known = selfGatingImages.get(image);
  if (!known) {
    known = withTimeout(docker.getImage(image).inspect(), 15_000, "the engine did not answer an image inspect within 15 s")
      .then((info) => info.Config?.Labels?.[LABEL.selfGating] === "1")
      .catch(() => false);
    selfGatingImages.set(image, known);
  }
  return known;
}

async function resolvePolicy(policy: RunAgentOptions["policy"]): Promise<Policy> {
  if (typeof policy === "string") return loadPolicy(policy);
  if (isNormalizedPolicy(policy)) return policy;
  return definePolicy(policy);
}

function isNormalizedPolicy(value: unknown): value is Policy {
  const v = value as Policy;
  return typeof v === "object" && v !== null && typeof v.source === "string" && typeof v.network?.disabled === "boolean" && Array.isArray(v.network.allowedEndpoints) && typeof v.resources?.memoryBytes === "number";
}
