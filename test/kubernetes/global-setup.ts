/**
 * The Kubernetes suite's prerequisites: a cluster (the local one from scripts/k8s/cluster.sh, or any
 * KUBECONFIG names), and everything the Docker suite needs (brokers, images: they are built locally).
 * Every run in these tests goes to the kubernetes backend: AIRLOCK_BACKEND is set here, so the same
 * example tests that run on Docker run on the cluster, with the same assertions.
 */
import { packagePath } from "../../runner/paths.js";
import { kubernetesBackend } from "../../runner/backends/kubernetes/index.js";
import { loadLocalClusterEnv } from "../../runner/backends/kubernetes/local-cluster.js";
import { prerequisites } from "../integration/global-setup.js";
import { release } from "node:os";
import { renderSecurityDoc } from "../integration/security/report.js";

export default async function setup(): Promise<() => void> {
  loadLocalClusterEnv(process.env.AIRLOCK_K8S_ENV ?? packagePath(".cache", "k8s", "run", "airlock.env"));
  process.env.AIRLOCK_BACKEND = "kubernetes";
  const backend = kubernetesBackend();
  await backend.client.core.listNode().catch((err: Error) => {
    throw new Error(
      `the kubernetes suite needs a cluster (${backend.client.server}): ${err.message}\nrun: bash scripts/k8s/cluster.sh up`,
    );
  });
  await backend.ready();
  // What an earlier, interrupted test run left would count as this run's leftovers.
  await backend.cleanup({ all: true });
  const engine = await prerequisites();
  // The Docker suites' rows stay as their last run left them: docs/SECURITY.md is rendered with
  // this suite's once all of them are there.
  return () => {
    renderSecurityDoc({ docker: engine.version, kernel: release() });
  };
}
