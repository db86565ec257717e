/**
 * The settings file scripts/k8s/cluster.sh writes for its local cluster (`export NAME='value'` lines:
 * KUBECONFIG, AIRLOCK_K8S_LOAD_IMAGE, AIRLOCK_K8S_HOST_ADDRESS), read into an environment without
 * overriding what is already set there. Used by the test suites and the benchmark.
 */
import { existsSync, readFileSync } from "node:fs";

export function loadLocalClusterEnv(file: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!existsSync(file)) return false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m && env[m[1]!] === undefined) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, "$1");
  }
  return true;
}
