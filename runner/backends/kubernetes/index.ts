/**
 * The Kubernetes backend: each agent a Pod in a namespace airlock manages, gated by the same rules
 * as on Docker (kube-run.ts has the stages, pod-spec.ts the objects). One per runner: it holds the
 * cluster client, knows which images it has loaded into the nodes, and creates the namespace once.
 */
import { exec as execCallback } from "node:child_process";
import { promisify } from "node:util";
import type Docker from "dockerode";
import type { ImageBuilds } from "../../images/builds.js";
import type { ImageSet } from "../../images/images.js";
import type { ExecutionBackend, CleanupReport, RunRequest } from "../backend.js";
import { KubernetesError } from "../../errors.js";
import { isOrphaned, LABEL } from "../../labels.js";
import { kubeClient, explainKubeError, isConflict, isNotFound, type KubeClient } from "./client.js";
import { kubernetesSettings, type KubernetesOptions, type KubernetesSettings } from "./config.js";
import { KubeRun } from "./kube-run.js";
import { Remembered } from "../../util/remembered.js";

const execShell = promisify(execCallback);

/** Where a Pod's images come from: built by the runner's local Docker engine (its Docker backend), then loaded into the nodes. */
export interface LocalImages {
  readonly docker: Docker;
  readonly builds: ImageBuilds;
  images(progress?: (line: string) => void): Promise<ImageSet>;
  /** Whether the local engine answers (a friendly error if not). */
  engineReachable(): Promise<void>;
}

export interface KubernetesRunSupport {
  /** The local engine that builds the images (runs need it; cleanup and the cluster checks do not). */
  images?: LocalImages;
  /** Remove what crashed runners left in the namespace before the first run (default false). */
  reapOrphans?: boolean;
}

export class KubernetesBackend implements ExecutionBackend {
  readonly name = "kubernetes" as const;
  readonly settings: KubernetesSettings;
  readonly reapOrphans: boolean;
  private readonly localImages?: LocalImages;
  private clientCache?: KubeClient;
  private readonly namespaceReady = new Remembered<void>();
  private readonly loaded = new Map<string, Promise<void>>();

  constructor(options: KubernetesOptions = {}, support: KubernetesRunSupport = {}) {
    this.settings = kubernetesSettings(options);
    this.reapOrphans = support.reapOrphans ?? false;
    if (support.images) this.localImages = support.images;
  }

  /** The local engine that builds this backend's images. */
  get images(): LocalImages {
    if (!this.localImages)
      throw new KubernetesError(
        "this Kubernetes backend was created without a local Docker engine to build the agents' images",
        'create it through a runner (createRunner({ backend: "kubernetes" })), which gives it its Docker engine',
      );
    return this.localImages;
  }

  get client(): KubeClient {
    this.clientCache ??= kubeClient(this.settings);
    return this.clientCache;
  }

  /** Images loaded by airlock are on the nodes already; any other is pulled as the cluster does. */
  get pullPolicy(): "Never" | "IfNotPresent" {
    return this.settings.loadImage ? "Never" : "IfNotPresent";
  }

  createRun(request: RunRequest): KubeRun {
    return new KubeRun(this, request);
  }

  /**
   * The cluster answers and airlock's namespace exists (created once, when missing); with
   * `reapOrphans`, what crashed runners left there is removed first (once per runner, as on Docker).
   */
  ready(reapOrphans = false): Promise<void> {
    return this.namespaceReady.get(async () => {
      const { core } = this.client;
      const name = this.settings.namespace;
      try {
        await core.readNamespace({ name });
      } catch (err) {
        if (!isNotFound(err)) throw explainKubeError(err, this.client, `reading namespace ${name}`, name);
        await core
          .createNamespace({ body: { metadata: { name, labels: { [LABEL.managed]: "true" } } } })
          .catch((e: unknown) => {
            if (!isConflict(e)) throw explainKubeError(e, this.client, `creating namespace ${name}`, name);
          });
      }
      // The sweep of crashed runners' objects is best effort; airlock cleanup --backend kubernetes does it on demand.
      if (reapOrphans) await this.cleanup({}).catch(() => {});
    });
  }

  /**
   * Make locally built images available on the nodes: once per image for this runner, and not at all
   * when every schedulable node already reports it (airlock's tags name their content's hash).
   */
  async loadImages(tags: string[]): Promise<void> {
    const command = this.settings.loadImage;
    if (!command) return;
    const missing = tags.filter((t) => !this.loaded.has(t));
    const present = missing.length ? await this.onEveryNode(missing) : new Set<string>();
    await Promise.all(
      tags.map((tag) => {
        let loading = this.loaded.get(tag) ?? (present.has(tag) ? Promise.resolve() : undefined);
        if (!loading) {
          loading = execShell(command.split("{image}").join(`'${tag.replace(/'/g, "")}'`), {
            maxBuffer: 4 * 1024 * 1024,
          }).then(
            () => {},
            (err: Error & { stderr?: string }) => {
              this.loaded.delete(tag);
              throw new KubernetesError(
                `loading ${tag} into the cluster's nodes failed: ${(err.stderr ?? err.message).trim().split("\n").slice(-3).join("; ")}`,
                "check AIRLOCK_K8S_LOAD_IMAGE (it runs with {image} replaced by the tag)",
                err,
              );
            },
          );
        }
        this.loaded.set(tag, loading);
        return loading;
      }),
    );
  }

  /** Which of `tags` every schedulable node lists among its images (none, if the nodes cannot be read). */
  private async onEveryNode(tags: string[]): Promise<Set<string>> {
    // Nodes that cannot be read: no image counts as loaded, so airlock loads them.
    const nodes = await this.client.core.listNode().catch(() => undefined);
    const usable = nodes?.items.filter((n) => !n.spec?.unschedulable) ?? [];
    if (!usable.length) return new Set();
    return new Set(
      tags.filter((tag) => usable.every((n) => n.status?.images?.some((i) => i.names?.includes(qualifiedTag(tag))))),
    );
  }

  async cleanup({ all }: { all?: boolean }): Promise<CleanupReport> {
    const { core, networking } = this.client;
    const namespace = this.settings.namespace;
    const labelSelector = `${LABEL.managed}=true`;
    // The owner and the deadline are annotations, under the same keys as the Docker labels isOrphaned reads.
    const doomed = (o: { metadata?: { annotations?: Record<string, string> } }) =>
      all || isOrphaned(o.metadata?.annotations);
    const removed: CleanupReport["removed"] = [];
    try {
      const [pods, maps, secrets, policies] = await Promise.all([
        core.listNamespacedPod({ namespace, labelSelector }),
        core.listNamespacedConfigMap({ namespace, labelSelector }),
        core.listNamespacedSecret({ namespace, labelSelector }),
        networking.listNamespacedNetworkPolicy({ namespace, labelSelector }),
      ]);
      const remove = async (
        kind: string,
        items: { metadata?: { name?: string; annotations?: Record<string, string> } }[],
        del: (name: string) => Promise<unknown>,
      ) => {
        for (const item of items.filter(doomed)) {
          const name = item.metadata!.name!;
          await del(name).then(
            () => removed.push({ kind, name: `${namespace}/${name}` }),
            (err: unknown) => {
              if (!isNotFound(err)) throw err;
            },
          );
        }
      };
      await remove("pod", pods.items, (name) => core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }));
      await remove("configmap", maps.items, (name) => core.deleteNamespacedConfigMap({ namespace, name }));
      await remove("secret", secrets.items, (name) => core.deleteNamespacedSecret({ namespace, name }));
      await remove("networkpolicy", policies.items, (name) =>
        networking.deleteNamespacedNetworkPolicy({ namespace, name }),
      );
    } catch (err) {
      if (isNotFound(err)) return { removed };
      throw explainKubeError(err, this.client, `cleaning up namespace ${namespace}`, namespace);
    }
    return { removed };
  }

  async close(): Promise<void> {}
}

/** A tag as the nodes name it: docker.io/library/redis:7 for redis:7, docker.io/airlock/agent:x for airlock/agent:x. */
export function qualifiedTag(tag: string): string {
  const first = tag.split("/")[0]!;
  if (tag.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return tag;
  return tag.includes("/") ? `docker.io/${tag}` : `docker.io/library/${tag}`;
}

export function kubernetesBackend(
  options: KubernetesOptions = {},
  support: KubernetesRunSupport = {},
): KubernetesBackend {
  return new KubernetesBackend(options, support);
}
