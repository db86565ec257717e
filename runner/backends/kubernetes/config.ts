/**
 * How the Kubernetes backend finds and uses a cluster: the kubeconfig (KUBECONFIG, ~/.kube/config, or
 * the in-cluster service account), the namespace it manages, how airlock's locally built images
 * reach the nodes, and where the runner's host is from inside a Pod (for `localhost:` endpoints).
 * Options win over the environment; every value is checked here, with the fix.
 */
import { RunOptionsError } from "../../errors.js";
import { kubernetesSettings as kubernetesEnv } from "../../settings.js";

export interface KubernetesOptions {
  /** A kubeconfig file (default: KUBECONFIG, else ~/.kube/config, else the in-cluster config). */
  kubeconfig?: string;
  /** The kubeconfig context (default: its current context; AIRLOCK_K8S_CONTEXT). */
  context?: string;
  /** The namespace airlock creates its Pods in, created when missing (default AIRLOCK_K8S_NAMESPACE, else "airlock"). */
  namespace?: string;
  /**
   * A shell command that makes a local image available on the cluster's nodes, with `{image}` for its
   * tag: e.g. `kind load docker-image {image}`, or the `ctr import` that scripts/k8s/cluster.sh writes
   * (AIRLOCK_K8S_LOAD_IMAGE). Without it, the nodes must already have (or be able to pull) the tags.
   */
  loadImage?: string;
  /**
   * The address of the runner's host as a Pod sees it (the node's address on the pod network when
   * the runner runs on the node; AIRLOCK_K8S_HOST_ADDRESS). A policy's `localhost:PORT` endpoints are
   * forwarded there; without it such endpoints are refused on this backend.
   */
  hostAddress?: string;
}

export interface KubernetesSettings {
  kubeconfig?: string;
  context?: string;
  namespace: string;
  loadImage?: string;
  hostAddress?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function kubernetesSettings(
  options: KubernetesOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): KubernetesSettings {
  const fromEnv = kubernetesEnv(env);
  const namespace = options.namespace ?? fromEnv.namespace ?? "airlock";
  if (!DNS_LABEL.test(namespace))
    throw new RunOptionsError(
      `kubernetes namespace "${namespace}" is not a valid namespace name`,
      "use lower-case letters, digits and '-' (at most 63), e.g. airlock",
    );
  const loadImage = options.loadImage ?? fromEnv.loadImage;
  if (loadImage !== undefined && !loadImage.includes("{image}"))
    throw new RunOptionsError(
      `the image load command "${loadImage}" has no {image}`,
      "put {image} where the image's tag goes, e.g. kind load docker-image {image}",
    );
  const hostAddress = options.hostAddress ?? fromEnv.hostAddress;
  if (hostAddress !== undefined && !IPV4.test(hostAddress))
    throw new RunOptionsError(
      `the host address "${hostAddress}" is not an IPv4 address`,
      "give the node's address on the pod network, e.g. 10.244.0.1 (AIRLOCK_K8S_HOST_ADDRESS)",
    );
  const kubeconfig = options.kubeconfig ?? (env.KUBECONFIG || undefined);
  const context = options.context ?? fromEnv.context;
  return {
    namespace,
    ...(kubeconfig ? { kubeconfig } : {}),
    ...(context ? { context } : {}),
    ...(loadImage ? { loadImage } : {}),
    ...(hostAddress ? { hostAddress } : {}),
  };
}
