/**
 * The cluster, through @kubernetes/client-node: the typed APIs airlock uses, exec and logs, and
 * the translation of what the API says when it refuses (no cluster, no rights) into errors with a fix.
 */
import { CoreV1Api, Exec, KubeConfig, Log, NetworkingV1Api, Watch } from "@kubernetes/client-node";
import { KubernetesError } from "../../errors.js";
import type { KubernetesSettings } from "./config.js";

export interface KubeClient {
  readonly config: KubeConfig;
  readonly core: CoreV1Api;
  readonly networking: NetworkingV1Api;
  readonly exec: Exec;
  readonly log: Log;
  readonly watch: Watch;
  /** What the kubeconfig points at, for messages. */
  readonly server: string;
}

export function kubeClient(settings: KubernetesSettings): KubeClient {
  const config = new KubeConfig();
  try {
    if (settings.kubeconfig) config.loadFromFile(settings.kubeconfig);
    else config.loadFromDefault();
    if (settings.context) config.setCurrentContext(settings.context);
  } catch (err) {
    throw new KubernetesError(
      `could not read the kubeconfig${settings.kubeconfig ? ` ${settings.kubeconfig}` : ""}: ${(err as Error).message}`,
      "point KUBECONFIG (or --kubeconfig) at a readable kubeconfig file",
      err,
    );
  }
  const cluster = config.getCurrentCluster();
  if (!cluster)
    throw new KubernetesError(
      "the kubeconfig names no cluster (no current context)",
      "set KUBECONFIG to your cluster's kubeconfig, or bring up the local one: bash scripts/k8s/cluster.sh up",
    );
  return {
    config,
    core: config.makeApiClient(CoreV1Api),
    networking: config.makeApiClient(NetworkingV1Api),
    exec: new Exec(config),
    log: new Log(config),
    watch: new Watch(config),
    server: cluster.server,
  };
}

/** The HTTP status of an API error (0 when the API was not reached). */
export function apiStatus(err: unknown): number {
  const code = (err as { code?: unknown; statusCode?: unknown })?.code ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof code === "number" ? code : 0;
}

export const isNotFound = (err: unknown) => apiStatus(err) === 404;
export const isConflict = (err: unknown) => apiStatus(err) === 409;

/** The API's own words for a refusal (its Status message), else the error's. */
export function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === "string") {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      if (body.trim()) return body.trim().slice(0, 300);
    }
  } else if (body && typeof (body as { message?: unknown }).message === "string")
    return (body as { message: string }).message;
  return (err as Error)?.message ?? String(err);
}

/** An API failure, said with what to do about it. */
export function explainKubeError(
  err: unknown,
  client: Pick<KubeClient, "server">,
  doing: string,
  namespace: string,
): KubernetesError {
  const status = apiStatus(err);
  const said = apiMessage(err);
  if (status === 401)
    return new KubernetesError(
      `the cluster at ${client.server} did not accept the kubeconfig's credentials while ${doing}: ${said}`,
      "refresh the kubeconfig's credentials (kubectl get pods should work)",
      err,
    );
  if (status === 403)
    return new KubernetesError(
      `the cluster refused ${doing}: ${said}`,
      `grant the runner's user create/get/list/watch/delete on pods, pods/exec, pods/log, configmaps, secrets and networkpolicies in namespace ${namespace} (docs/KUBERNETES.md has the Role)`,
      err,
    );
  if (status === 0)
    return new KubernetesError(
      `could not reach the cluster at ${client.server} while ${doing}: ${said}`,
      "check that the cluster is up (kubectl get nodes), or bring up the local one: bash scripts/k8s/cluster.sh up",
      err,
    );
  return new KubernetesError(`the cluster refused ${doing} (HTTP ${status}): ${said}`, undefined, err);
}
