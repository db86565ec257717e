/**
 * The Docker backend: each agent in its own container on the local (or DOCKER_HOST) engine, gated
 * by airlock's init or a gate container (runner/gate/). The default.
 */
import type { ExecutionBackend } from "../backend.js";
import { cleanup } from "../../docker/cleanup.js";
import type { Runner } from "../../runner.js";
import { DockerRun } from "./docker-run.js";

export function dockerBackend(runner: Runner): ExecutionBackend {
  return {
    name: "docker",
    createRun: (r) => new DockerRun(r.runner, r.options, r.name, r.outputDir, r.base, r.emit),
    cleanup: async ({ all }) => {
      const report = await cleanup(runner.docker, { all: Boolean(all), network: Boolean(all) });
      return { removed: [...report.containersRemoved.map((name) => ({ kind: "container", name })), ...(report.networkRemoved ? [{ kind: "network", name: "airlock" }] : [])] };
    },
    close: async () => {},
  };
}
