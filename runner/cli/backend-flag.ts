/**
 * `--backend docker|kubernetes` (and `--namespace`), shared by the commands that run agents or clean
 * up after them: checked here once, with the same words everywhere.
 */
import type { Command } from "commander";
import { BACKEND_NAMES, isBackendName, type BackendName } from "../backends/backend.js";
import type { RunnerOptions } from "../runner.js";
import { UsageError } from "./exit-codes.js";

export interface BackendFlags {
  backend?: string;
  namespace?: string;
}

export function addBackendFlags(command: Command): Command {
  return command
    .option(
      "--backend <name>",
      `where agents run: ${BACKEND_NAMES.join(" or ")} (default: the run file's backend, else AIRLOCK_BACKEND, else docker)`,
    )
    .option(
      "--namespace <name>",
      "with --backend kubernetes: the namespace airlock manages (default AIRLOCK_K8S_NAMESPACE, else airlock)",
    );
}

export function backendFlag(flags: BackendFlags): BackendName | undefined {
  if (flags.backend === undefined) return undefined;
  if (!isBackendName(flags.backend))
    throw new UsageError(`--backend is ${BACKEND_NAMES.join(" or ")}, not "${flags.backend}"`);
  return flags.backend;
}

/** The runner settings the flags ask for. */
export function runnerBackendOptions(flags: BackendFlags): Pick<RunnerOptions, "backend" | "kubernetes"> {
  const backend = backendFlag(flags);
  return {
    ...(backend ? { backend } : {}),
    ...(flags.namespace ? { kubernetes: { namespace: flags.namespace } } : {}),
  };
}
