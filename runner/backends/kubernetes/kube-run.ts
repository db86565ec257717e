/**
 * An agent run on Kubernetes, its stages in the order they happen (the shared ones are in
 * run/run-stages.ts):
 *
 *   prepare → images (built by the local engine, loaded into the nodes) → gate plan (the same
 *   rules as on Docker) → objects (ConfigMap, Secret, NetworkPolicy, Pod) → gate (the init
 *   container's rules read back over exec and compared, the forwarders opened for the Pod's
 *   address, then the init released: pod-gate.ts) → agent (logs followed) → exit → output and denied tables
 *   read from the Pod → the result
 *
 * dispose() deletes everything the run created, whatever happened.
 */
import { PassThrough } from "node:stream";
import { KubernetesError, RunOptionsError } from "../../errors.js";
import { ownerId } from "../../docker/labels.js";
import { parseDeniedReport } from "../../gate/denied.js";
import { LoopbackForwarder } from "../../run/loopback-forwarder.js";
import { enforcementFor, gateSummary, type Enforcement, type Forwarders } from "../../gate/enforce.js";
import { trustedImages } from "../../images/trust.js";
import type { PreparedRun } from "../../run/prepare.js";
import type { ImageSet } from "../../images/images.js";
import type { AgentResult } from "../../run/result.js";
import { RunStages, type RunExit } from "../../run/run-stages.js";
import type { StopRequest } from "../../run/exit-wait.js";
import type { RunRequest } from "../backend.js";
import { apiMessage, explainKubeError } from "./client.js";
import { execIn, execRetrying } from "./exec.js";
import type { KubernetesBackend } from "./index.js";
import { outputUnpacker, skippedNote } from "../../run/output-tar.js";
import { podFiles } from "./pod-files.js";
import { ensureLoopbackExemption } from "./host-loopback.js";
import { describeWaiting, fixFor, GATE_START_MS, openPodGate } from "./pod-gate.js";
import { containerStatus, podStartProblem, PodWatch } from "./pod-watch.js";
import {
  AGENT_CONTAINER,
  configMapSpec,
  envSecretSpec,
  KEEPER_CONTAINER,
  networkPolicySpec,
  objectName,
  podSpec,
  POD_GATE,
  REPORT_CONTAINER,
  type PodSpecInput,
} from "./pod-spec.js";

/** How long the gate waits for the runner's release (the check takes well under a second). */
const RELEASE_SECONDS = 60;
/** How long a stop waits for the keeper to be running (it starts right after the agent). */
const KEEPER_START_MS = 10_000;
/** After the SIGKILL, how long the agent may still take to be gone before its Pod is deleted. */
const KILL_BACKSTOP_MS = 5000;

interface ChosenImage {
  tag: string;
  airlocks: boolean;
  /** The local engine has it (then the image loader, if any, brings it to the nodes). */
  local: boolean;
  checked: Promise<void>;
}

export class KubeRun extends RunStages {
  private watch?: PodWatch;
  private podName?: string;
  private readonly forwarders: LoopbackForwarder[] = [];
  private readonly created: { kind: "pod" | "configmap" | "secret" | "networkpolicy"; name: string }[] = [];
  private deleting?: Promise<void>;

  constructor(
    private readonly backend: KubernetesBackend,
    r: RunRequest,
  ) {
    super(r);
  }

  private get ns(): string {
    return this.backend.settings.namespace;
  }

  async execute(): Promise<AgentResult> {
    const prepared = await this.prepare(async () => {
      // Images are still built by the local engine; the cluster runs them.
      await this.backend.images.engineReachable();
      await this.backend.ready(this.backend.reapOrphans);
    });
    const images = await this.backend.images.images((line) => this.emit({ type: "build", agent: this.name, line }));
    const image = await this.chooseImage(prepared, images);
    const rights = this.mintRights(prepared);
    this.phase(
      "gate",
      prepared.policy.network.disabled ? "network disabled (the Pod's rules deny all)" : gateSummary(prepared.policy),
    );
    // What the gate enforces, worked out as on Docker; here the init container puts it in force.
    const enforcement = await enforcementFor(prepared.policy, this.options.resolver);
    const gateway = this.openForwarders(enforcement, prepared);
    const [forwarded] = await Promise.all([
      gateway,
      this.backend.loadImages([images.gate, ...(image.local ? [image.tag] : [])]),
      image.checked,
    ]);
    const env = { ...prepared.env, ...(await rights) };
    const input = await this.podInput(prepared, image, images.gate, enforcement, forwarded);
    const pod = await this.createObjects(input, env);
    const watch = (this.watch = new PodWatch(this.backend.client, this.ns, pod));
    this.phase("gate", "waiting for the gate's init container");
    await openPodGate({
      client: this.backend.client,
      namespace: this.ns,
      pod,
      watch,
      rules: input.rules,
      forwarders: this.forwarders,
      ...(this.options.signal ? { cancelled: this.options.signal } : {}),
    });
    const exit = await this.runAgent(watch, prepared);
    return this.finish(exit);
  }

  /** The agent's image tag (built and loaded by airlock, or the caller's), and whether airlock built it. */
  private async chooseImage(prepared: PreparedRun, images: ImageSet): Promise<ChosenImage> {
    const o = this.options;
    if (o.image) {
      this.image = o.image;
      const info = await this.backend.images.docker
        .getImage(o.image)
        .inspect()
        // An image the local engine does not have is pulled by the cluster, as any other.
        .catch(() => undefined);
      // A Pod names its image by reference: an image given by its ID runs under one of its tags.
      let tag = o.image;
      if (info && /^(sha256:)?[0-9a-f]{12,64}$/.test(o.image)) {
        tag = info.RepoTags?.find((t) => t !== "<none>:<none>") ?? "";
        if (!tag)
          throw new RunOptionsError(
            `image ${o.image} has no tag, and a Pod names its image by one`,
            `tag it (docker tag ${o.image.slice(0, 19)} my/agent:1) and pass the tag`,
          );
      }
      return {
        tag,
        airlocks: info ? trustedImages().has(info.Id) : false,
        local: Boolean(info),
        checked: Promise.resolve(),
      };
    }
    const ctx = {
      docker: this.backend.images.docker,
      images,
      progress: (line: string) => this.emit({ type: "build", agent: this.name, line }),
      builds: this.backend.images.builds,
    };
    const built = await prepared.language.image(ctx, prepared.policy);
    this.image = built.tag;
    const checked = prepared.staged?.check?.(ctx, built) ?? Promise.resolve();
    // Awaited before the Pod is created; until then a rejection must not count as unhandled.
    checked.catch(() => {});
    return { tag: built.tag, airlocks: true, local: true, checked };
  }

  /** One forwarder per `localhost:PORT` endpoint, on the host address Pods reach; their ports. */
  private async openForwarders({ plan }: Enforcement, prepared: PreparedRun): Promise<Forwarders> {
    const address = this.backend.settings.hostAddress;
    if (!plan.loopback.length) return { address: address ?? "127.0.0.1", ports: [] };
    if (!address) {
      throw new RunOptionsError(
        `${prepared.policy.source}: network.allowedEndpoints has ${plan.loopback.map((r) => r.endpoint.raw).join(", ")}, and on Kubernetes localhost means the runner's host, which this backend does not know how Pods reach`,
        "set AIRLOCK_K8S_HOST_ADDRESS (kubernetes.hostAddress) to the node's address on the pod network when the runner runs on the node, or name the broker's Service address in the policy instead",
      );
    }
    await ensureLoopbackExemption(address);
    for (const route of plan.loopback) this.forwarders.push(await LoopbackForwarder.listen(address, route.target));
    return { address, ports: this.forwarders.map((f) => f.port) };
  }

  private async podInput(
    prepared: PreparedRun,
    image: ChosenImage,
    gateImage: string,
    enforcement: Enforcement,
    forwarders: Forwarders,
  ): Promise<PodSpecInput> {
    const { policy } = prepared;
    const o = this.options;
    const [bundle, workspace] = await Promise.all([
      prepared.bundleDir ? podFiles(prepared.bundleDir, [], "the agent's bundle") : Promise.resolve([]),
      o.workingDir
        ? podFiles(o.workingDir, prepared.workspace.hidden, `working directory ${o.workingDir}`)
        : Promise.resolve([]),
    ]);
    const holdSeconds = policy.timeoutSeconds + Math.ceil(this.graceMs / 1000) + 300;
    return {
      runId: this.runId,
      agentName: this.name,
      namespace: this.ns,
      owner: ownerId(),
      expiresAt: Date.now() + holdSeconds * 1000,
      gateImage,
      agentImage: image.tag,
      pullPolicy: this.backend.pullPolicy,
      // In airlock's images the runtime runs the bundled agent, or the command replaces it; any other image keeps its entrypoint.
      ...(image.airlocks ? { command: o.command ?? [...prepared.language.runtimeArgv] } : {}),
      args: o.command ? (image.airlocks ? [] : o.command) : [prepared.staged!.entry],
      user: prepared.user,
      memoryBytes: policy.resources.memoryBytes,
      cpus: policy.resources.cpus,
      outputBytes: policy.resources.outputBytes,
      deadlineSeconds: holdSeconds,
      holdSeconds,
      releaseSeconds: RELEASE_SECONDS,
      rules: enforcement.rules(forwarders),
      bundle,
      workspace,
      hostsFile: enforcement.hostsFile,
      loopbackForwarded: enforcement.plan.loopback.length > 0,
      egress: enforcement.egress(forwarders),
      networkDisabled: policy.network.disabled,
    };
  }

  private async createObjects(input: PodSpecInput, env: Record<string, string>): Promise<string> {
    const api = this.backend.client;
    const name = objectName(this.runId);
    this.phase("starting", `creating Pod ${this.ns}/${name}`);
    const attempt = async <T>(
      doing: string,
      kind: (typeof this.created)[number]["kind"],
      objectName: string,
      create: () => Promise<T>,
    ) => {
      try {
        const made = await create();
        this.created.push({ kind, name: objectName });
        return made;
      } catch (err) {
        throw explainKubeError(err, api, doing, this.ns);
      }
    };
    await Promise.all([
      attempt("creating the run's ConfigMap", "configmap", name, () =>
        api.core.createNamespacedConfigMap({ namespace: this.ns, body: configMapSpec(input) }),
      ),
      attempt("creating the run's Secret", "secret", `${name}-env`, () =>
        api.core.createNamespacedSecret({ namespace: this.ns, body: envSecretSpec(input, env) }),
      ),
      attempt("creating the run's NetworkPolicy", "networkpolicy", name, () =>
        api.networking.createNamespacedNetworkPolicy({ namespace: this.ns, body: networkPolicySpec(input) }),
      ),
    ]);
    await attempt("creating the agent's Pod", "pod", name, () =>
      api.core.createNamespacedPod({ namespace: this.ns, body: podSpec(input) }),
    );
    this.podName = name;
    return name;
  }

  /** The agent from its start to its exit: logs followed, the timeout and cancellation enforced. */
  private async runAgent(watch: PodWatch, prepared: PreparedRun): Promise<RunExit> {
    const { policy } = prepared;
    const api = this.backend.client;
    const pod = this.podName!;
    this.phase("starting", `starting ${this.name}`);
    // One capture gets everything: the log API gives stdout and stderr as one stream.
    const { stdout } = this.openCaptures();
    let stop: StopRequest | undefined;
    const timers: NodeJS.Timeout[] = [];
    const stopNow = (request: StopRequest) => {
      if (stop) return;
      stop = request;
      this.phase(
        "stopping",
        request.why ??
          (request.reason === "timed_out"
            ? `timeout of ${policy.timeoutSeconds}s reached: stopping`
            : "cancelled: stopping"),
      );
      // SIGTERM now and SIGKILL after the grace, sent by the keeper, so that the Pod (and the output) stays.
      void this.signalAgent(pod, "TERM");
      timers.push(setTimeout(() => void this.signalAgent(pod, "KILL"), this.graceMs));
      // If the agent outlives its SIGKILL (it kept the keeper from sending it), the Pod goes, output and all.
      timers.push(setTimeout(() => (this.deleting = this.deletePod(0)), this.graceMs + KILL_BACKSTOP_MS));
    };
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => stopNow({ reason: "cancelled" });
    this.options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const running = await watch.until((p) => {
        const s = containerStatus(p, AGENT_CONTAINER);
        if (s?.state?.running || s?.state?.terminated) return true;
        const problem = podStartProblem(p);
        return problem ? problem : undefined;
      }, GATE_START_MS);
      if (typeof running === "string")
        throw new KubernetesError(`the agent's container could not start: ${running}`, fixFor(running));
      if (!running)
        throw new KubernetesError(
          `the agent's container did not start within ${GATE_START_MS / 1000} s${describeWaiting(watch.current)}`,
        );
      // The timeout counts from the agent's start, as on Docker: a slow Pod start is not the agent's time.
      timer = setTimeout(() => stopNow({ reason: "timed_out" }), policy.timeoutSeconds * 1000);
      this.phase("running", `${this.name} is running (timeout ${policy.timeoutSeconds}s)`);
      const pipe = new PassThrough();
      pipe.pipe(stdout.writable());
      const logsDone = new Promise<void>((r) => pipe.on("finish", r));
      const follow = await api.log.log(this.ns, pod, AGENT_CONTAINER, pipe, { follow: true }).catch((err: unknown) => {
        this.warn(`could not follow the agent's log: ${apiMessage(err)}`);
        pipe.end();
        return undefined;
      });
      const terminated = await watch.until(
        (p) =>
          containerStatus(p, AGENT_CONTAINER)?.state?.terminated ??
          (p.status?.phase === "Failed"
            ? { exitCode: 137, reason: p.status.reason ?? "Failed", message: p.status.message }
            : undefined),
        24 * 3600_000,
      );
      await Promise.race([logsDone, new Promise((r) => setTimeout(r, 2000).unref())]);
      follow?.abort();
      this.stdout!.end();
      this.stderr!.end();
      const evicted =
        watch.current?.status?.reason === "Evicted"
          ? `the Pod was evicted: ${watch.current.status.message ?? ""}`.trim()
          : undefined;
      const outputProblem = await this.collect(pod, policy.resources);
      await this.readBusDenials();
      const code = terminated?.exitCode ?? 137;
      return {
        code,
        ...(terminated?.reason === "OOMKilled" ? { oomKilled: true } : {}),
        ...(stop ? { stop } : {}),
        ...(evicted ? { output: evicted } : {}),
        ...(outputProblem ? { output: outputProblem } : {}),
      };
    } finally {
      clearTimeout(timer);
      timers.forEach(clearTimeout);
      this.options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * The keeper signals the agent's processes. It starts after the agent (the kubelet starts a Pod's
   * containers in order), so a stop early in a run waits for it first.
   */
  private async signalAgent(pod: string, signal: "TERM" | "KILL"): Promise<void> {
    await this.watch?.until(
      (p) => (containerStatus(p, KEEPER_CONTAINER)?.state?.running ? true : undefined),
      KEEPER_START_MS,
    );
    const sent = await execRetrying(this.backend.client, this.ns, pod, KEEPER_CONTAINER, [POD_GATE, "signal", signal], {
      timeoutMs: 10_000,
    });
    if (sent.code !== 0)
      this.warn(`could not send SIG${signal} to the agent: ${sent.stderr.trim() || `exit ${sent.code}`}`);
  }

  /** /output from the keeper (as a tar), and the denied-connection tables from the reporter; what over-ran the policy's output limits, if anything. */
  private async collect(
    pod: string,
    limits: { outputBytes: number; outputFiles: number },
  ): Promise<string | undefined> {
    const api = this.backend.client;
    const unpack = outputUnpacker(this.outputDir, { bytes: limits.outputBytes, entries: limits.outputFiles });
    const [tarred, report] = await Promise.all([
      execIn(api, this.ns, pod, KEEPER_CONTAINER, ["tar", "-C", "/output", "-cf", "-", "."], {
        sink: unpack.sink,
        timeoutMs: 120_000,
      }).catch((err: Error) => ({ code: -1, stderr: err.message, stdout: Buffer.alloc(0) })),
      execRetrying(api, this.ns, pod, REPORT_CONTAINER, [POD_GATE, "report"], { timeoutMs: 15_000 }),
    ]);
    // Awaited below; until then a rejection must not count as unhandled.
    unpack.result.catch(() => {});
    if (report.code === 0) this.denied = parseDeniedReport(report.stdout.toString());
    if (tarred.code === -1) {
      unpack.sink.destroy();
      this.warn(`the agent's /output could not be copied back: ${tarred.stderr}`);
    } else {
      unpack.sink.end();
      const unpacked = await unpack.result.catch((err: Error) => {
        this.warn(`the agent's /output could not be unpacked: ${err.message}`);
        return undefined;
      });
      if (unpacked?.skipped.length) this.warn(skippedNote(unpacked.skipped));
      if (unpacked) this.copied = { files: unpacked.written, bytes: unpacked.bytes, special: unpacked.special };
      return unpacked?.problem;
    }
    return undefined;
  }

  /** Where a Python traceback or a Node error is: the one log stream. */
  protected override failureText(): string {
    return this.stdout?.text() ?? "";
  }

  private deletePod(graceSeconds: number): Promise<void> {
    if (!this.podName) return Promise.resolve();
    return this.backend.client.core
      .deleteNamespacedPod({ namespace: this.ns, name: this.podName, gracePeriodSeconds: graceSeconds })
      .then(
        () => {},
        () => {},
      );
  }

  async dispose(): Promise<void> {
    this.watch?.close();
    await Promise.all(this.forwarders.map((f) => f.close()));
    const api = this.backend.client;
    const ns = this.ns;
    const removals = this.created.map(({ kind, name }) => {
      const args = { namespace: ns, name, gracePeriodSeconds: 0 };
      if (kind === "pod")
        return this.deleting
          ? this.deleting.then(() => api.core.deleteNamespacedPod(args))
          : api.core.deleteNamespacedPod(args);
      if (kind === "configmap") return api.core.deleteNamespacedConfigMap(args);
      if (kind === "secret") return api.core.deleteNamespacedSecret(args);
      return api.networking.deleteNamespacedNetworkPolicy(args);
    });
    this.background(Promise.allSettled(removals));
    await this.releaseShared();
  }
}
