/**
 * The Kubernetes objects of one run — its ConfigMap (rules, hosts, files), Secret (environment),
 * NetworkPolicy and Pod — created together and deleted together: each is recorded the moment the
 * API accepted it, so remove() deletes exactly what exists, whatever happened in between.
 */
import { explainKubeError, type KubeClient } from "./client.js";
import { configMapSpec, envSecretSpec, networkPolicySpec, objectName, podSpec, type PodSpecInput } from "./pod-spec.js";

type Kind = "pod" | "configmap" | "secret" | "networkpolicy";

export class PodObjects {
  private readonly created: { kind: Kind; name: string }[] = [];
  private podName?: string;
  /** The Pod's deletion already asked for (a stop's backstop), which remove() waits for. */
  private deleting?: Promise<void>;

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
  ) {}

  /** The run's ConfigMap, Secret and NetworkPolicy, then its Pod; the Pod's name. */
  async create(input: PodSpecInput, env: Record<string, string>): Promise<string> {
    const api = this.client;
    const namespace = this.namespace;
    const name = objectName(input.runId);
    const attempt = async <T>(doing: string, kind: Kind, objectName: string, create: () => Promise<T>) => {
      try {
        const made = await create();
        this.created.push({ kind, name: objectName });
        return made;
      } catch (err) {
        throw explainKubeError(err, api, doing, namespace);
      }
    };
    await Promise.all([
      attempt("creating the run's ConfigMap", "configmap", name, () =>
        api.core.createNamespacedConfigMap({ namespace, body: configMapSpec(input) }),
      ),
      attempt("creating the run's Secret", "secret", `${name}-env`, () =>
        api.core.createNamespacedSecret({ namespace, body: envSecretSpec(input, env) }),
      ),
      attempt("creating the run's NetworkPolicy", "networkpolicy", name, () =>
        api.networking.createNamespacedNetworkPolicy({ namespace, body: networkPolicySpec(input) }),
      ),
    ]);
    await attempt("creating the agent's Pod", "pod", name, () =>
      api.core.createNamespacedPod({ namespace, body: podSpec(input) }),
    );
    this.podName = name;
    return name;
  }

  /** Delete the Pod now, output and all (an agent that outlived its SIGKILL). */
  deletePodNow(): void {
    if (!this.podName) return;
    this.deleting = this.client.core
      .deleteNamespacedPod({ namespace: this.namespace, name: this.podName, gracePeriodSeconds: 0 })
      .then(
        () => {},
        // remove() deletes it again (and reports nothing either: the namespace sweep is the backstop).
        () => {},
      );
  }

  /** Delete everything created; settles when every deletion was answered. */
  remove(): Promise<unknown> {
    const api = this.client;
    const removals = this.created.splice(0).map(({ kind, name }) => {
      const args = { namespace: this.namespace, name, gracePeriodSeconds: 0 };
      if (kind === "pod")
        return this.deleting
          ? this.deleting.then(() => api.core.deleteNamespacedPod(args))
          : api.core.deleteNamespacedPod(args);
      if (kind === "configmap") return api.core.deleteNamespacedConfigMap(args);
      if (kind === "secret") return api.core.deleteNamespacedSecret(args);
      return api.networking.deleteNamespacedNetworkPolicy(args);
    });
    return Promise.allSettled(removals);
  }
}
