/**
 * Which backend a run uses: the run's option, else the runner's, else AIRLOCK_BACKEND, else Docker.
 * The one place that knows every backend; each is created once per runner, when first asked for,
 * and a backend's own dependencies are loaded only then.
 */
import { RunOptionsError } from "../errors.js";
import { BACKEND_NAMES, isBackendName, type BackendName, type ExecutionBackend } from "./backend.js";
import type { KubernetesOptions } from "./kubernetes/config.js";
import type { DockerBackend } from "./docker/docker-backend.js";
import { backendSetting } from "../settings.js";

export { isBackendName };

/** The backend named by AIRLOCK_BACKEND, checked. */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): BackendName | undefined {
  const value = backendSetting(env);
  if (!value) return undefined;
  if (!isBackendName(value))
    throw new RunOptionsError(
      `AIRLOCK_BACKEND=${value} is not a backend airlock has`,
      `use one of ${BACKEND_NAMES.join(", ")}`,
    );
  return value;
}

/** The Kubernetes client is loaded only by runs that use it (importing it costs about a second). */
export async function createBackend(
  name: BackendName,
  from: {
    /** The runner's Docker backend: Docker runs use it, and Kubernetes builds its images with its engine. */
    docker: () => DockerBackend;
    kubernetes: KubernetesOptions | undefined;
    reapOrphans: boolean;
  },
): Promise<ExecutionBackend> {
  switch (name) {
    case "docker":
      return from.docker();
    case "kubernetes":
      return (await import("./kubernetes/index.js")).kubernetesBackend(from.kubernetes, {
        images: from.docker(),
        reapOrphans: from.reapOrphans,
      });
  }
}
