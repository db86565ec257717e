/**
 * An agent run on Kubernetes, its stages in the order they happen (the shared ones are in
 * run/run-stages.ts):
 *
 *   prepare → image (kube-image.ts: built by the local engine, loaded into the nodes) → what the
 *   gate enforces (gate/enforce.ts, as on Docker) → objects (pod-objects.ts: ConfigMap, Secret,
 *   NetworkPolicy, Pod) → gate (pod-gate.ts: the init container's rules read back over exec and
 *   compared, the forwarders opened for the Pod's address, then the init released) → agent
 *   (pod-agent.ts: logs followed, timeout and cancel) → output and denied tables read from the Pod
 *   → the result
 *
 * dispose() deletes everything the run created (pod-objects.ts), whatever happened.
 */
import { engineErrorsExplained } from "../docker/engine/client.js";
import { RunOptionsError } from "../../errors.js";
import { ownerId } from "../../labels.js";
import { enforcementFor, gateSummary, type Enforcement, type Forwarders } from "../../gate/enforce.js";
import type { ImageSet } from "../../images/images.js";
import { HttpsEgress } from "../../run/https-egress.js";
import { readTrustFiles } from "../../run/https-trust.js";
import { LoopbackForwarder } from "../../run/loopback-forwarder.js";
import type { PreparedRun } from "../../run/prepare.js";
import type { AgentResult } from "../../run/result.js";
import { RunStages, type RunExit } from "../../run/run-stages.js";
import type { RunRequest } from "../backend.js";
import { ensureLoopbackExemption } from "./host-loopback.js";
import type { KubernetesBackend } from "./index.js";
import { choosePodImage, type PodImage } from "./kube-image.js";
import { collectFromPod, followAgent, podRefusalSink, type RunPod } from "./pod-agent.js";
import { podFiles } from "./pod-files.js";
import { openPodGate } from "./pod-gate.js";
import { PodObjects } from "./pod-objects.js";
import { objectName, type PodSpecInput } from "./pod-spec.js";
import { PodWatch } from "./pod-watch.js";

/** How long the gate waits for the runner's release (the check takes well under a second). */
const RELEASE_SECONDS = 60;

export class KubeRun extends RunStages {
  private readonly forwarders: LoopbackForwarder[] = [];
  /** The egress proxy for HTTPS by name, when the policy lists services. */
  private httpsEgress?: HttpsEgress;
  /** The run's objects in the cluster, once it starts creating them. */
  private objects?: PodObjects;
  private watch?: PodWatch;

  constructor(
    private readonly backend: KubernetesBackend,
    r: RunRequest,
  ) {
    super(r);
  }

  private get ns(): string {
    return this.backend.settings.namespace;
  }

  /** The stages below; the engine going away midway is explained as such (images are built by the local engine on either backend). */
  execute(): Promise<AgentResult> {
    return engineErrorsExplained(() => this.stages());
  }

  private async stages(): Promise<AgentResult> {
    const prepared = await this.prepare(async () => {
      // Images are still built by the local engine; the cluster runs them.
      await this.backend.images.engineReachable();
      await this.backend.ready(this.backend.reapOrphans);
    });
    const progress = (line: string) => this.emit({ type: "build", agent: this.name, line });
    const images = await this.backend.images.images(progress);
    if (this.options.image) this.record.imageIs(this.options.image);
    const image = await choosePodImage({
      local: this.backend.images,
      images,
      prepared,
      image: this.options.image,
      progress,
    });
    if (!this.options.image) this.record.imageIs(image.tag);
    const rights = this.mintRights(prepared);
    this.phase(
      "gate",
      prepared.policy.network.disabled ? "network disabled (the Pod's rules deny all)" : gateSummary(prepared.policy),
    );
    // What the gate enforces, worked out as on Docker; here the init container puts it in force.
    const enforcement = await enforcementFor(prepared.policy, this.options.resolver);
    const [forwarders] = await Promise.all([
      this.openForwarders(enforcement, prepared),
      this.backend.loadImages([images.gate, ...(image.local ? [image.tag] : [])]),
      image.checked,
    ]);
    const env = { ...prepared.env, ...(await rights) };
    const input = await this.podInput({ prepared, image, images, enforcement, forwarders });
    this.phase("starting", `creating Pod ${this.ns}/${objectName(this.runId)}`);
    const objects = (this.objects = new PodObjects(this.backend.client, this.ns));
    const pod = await objects.create(input, env);
    const watch = (this.watch = new PodWatch(this.backend.client, this.ns, pod));
    this.phase("gate", "waiting for the gate's init container");
    await openPodGate({
      client: this.backend.client,
      namespace: this.ns,
      pod,
      watch,
      rules: input.rules,
      forwarders: [...this.forwarders, ...(this.httpsEgress ? [this.httpsEgress] : [])],
      ...(this.options.signal ? { cancelled: this.options.signal } : {}),
    });
    const exit = await this.runAgent(
      { client: this.backend.client, namespace: this.ns, pod, watch, objects },
      prepared,
    );
    return this.finish(prepared, exit);
  }

  /**
   * One forwarder per `localhost:PORT` endpoint, and the egress proxy for HTTPS by name, on the host
   * address Pods reach; their ports.
   */
  private async openForwarders({ plan }: Enforcement, prepared: PreparedRun): Promise<Forwarders> {
    const address = this.backend.settings.hostAddress;
    if (!plan.loopback.length && !plan.https.length) return { address: address ?? "127.0.0.1", ports: [] };
    if (!address) {
      const listed = [
        ...(plan.loopback.length
          ? [`network.allowedEndpoints has ${plan.loopback.map((r) => r.endpoint.raw).join(", ")}`]
          : []),
        ...(plan.https.length
          ? [`network.https lists ${plan.https.flatMap((r) => r.services.map((s) => s.raw)).join(", ")}`]
          : []),
      ];
      throw new RunOptionsError(
        `${prepared.policy.source}: ${listed.join(", and ")}, which the runner serves from its host (localhost: forwarded there; HTTPS by name: its egress proxy), and this backend does not know how Pods reach that host`,
        "set AIRLOCK_K8S_HOST_ADDRESS (kubernetes.hostAddress) to the node's address on the pod network when the runner runs on the node, or name the broker's Service address in the policy instead",
      );
    }
    await ensureLoopbackExemption(address);
    for (const route of plan.loopback)
      this.forwarders.push(await LoopbackForwarder.listen(address, route.target, prepared.taps?.onPort(route.port)));
    if (plan.https.length)
      this.httpsEgress = await HttpsEgress.open(address, plan.https, {
        ...(this.options.resolver ? { resolver: this.options.resolver } : {}),
        ...(prepared.https ? { terminating: prepared.https.terminating } : {}),
      });
    return {
      address,
      ports: this.forwarders.map((f) => f.port),
      ...(this.httpsEgress ? { https: this.httpsEgress.ports } : {}),
    };
  }

  /** Everything the run's objects are made from. */
  private async podInput(r: {
    prepared: PreparedRun;
    image: PodImage;
    images: ImageSet;
    enforcement: Enforcement;
    forwarders: Forwarders;
  }): Promise<PodSpecInput> {
    const { prepared, image, enforcement, forwarders } = r;
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
      gateImage: r.images.gate,
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
      ...(prepared.https ? { trust: await readTrustFiles(prepared.https.trustDir) } : {}),
      loopbackForwarded: enforcement.plan.loopback.length > 0,
      egress: enforcement.egress(forwarders),
      networkDisabled: policy.network.disabled,
    };
  }

  /** The agent from its start to its exit, then what it left: /output and the denied connections. */
  private async runAgent(pod: RunPod, prepared: PreparedRun): Promise<RunExit> {
    const { policy } = prepared;
    this.phase("starting", `starting ${this.name}`);
    const { stdout, stderr } = this.openCaptures();
    // The agent's refusals so far, written when it asks (each write is an exec): the egress proxy's,
    // and the brokers'; the kernel's tables are read once, after the agent exits.
    this.gateRefusedSoFar = async () => this.httpsEgress?.denials() ?? [];
    void this.refusalFeed.attach(podRefusalSink(pod), 0);
    const end = await followAgent(pod, {
      name: this.name,
      timeoutSeconds: policy.timeoutSeconds,
      graceMs: this.graceMs,
      ...(this.options.signal ? { signal: this.options.signal } : {}),
      capture: stdout,
      phase: (phase, message) => this.phase(phase, message),
      warn: (message) => this.warn(message),
    });
    stdout.end();
    stderr.end();
    const collected = await collectFromPod(pod, this.outputDir, policy.resources);
    if (collected.denied || this.httpsEgress)
      this.record.gateDenied([...(collected.denied ?? []), ...(this.httpsEgress?.denials() ?? [])]);
    for (const warning of collected.warnings) this.warn(warning);
    if (collected.copied) this.record.outputCopied(collected.copied);
    await this.readBusDenials();
    return {
      code: end.terminated?.exitCode ?? 137,
      ...(end.terminated?.reason === "OOMKilled" ? { oomKilled: true } : {}),
      ...(end.stop ? { stop: end.stop } : {}),
      ...(end.evicted ? { output: end.evicted } : {}),
      ...(collected.problem ? { output: collected.problem } : {}),
    };
  }

  /** Where a Python traceback or a Node error is: the one log stream. */
  protected override failureText(): string {
    return this.record.text("stdout");
  }

  async dispose(): Promise<void> {
    this.watch?.close();
    await Promise.all([...this.forwarders.map((f) => f.close()), this.httpsEgress?.close()]);
    if (this.objects) this.background(this.objects.remove());
    await this.releaseShared();
  }
}
