/**
 * airlock: run AI agents in Docker containers whose egress is locked to the broker endpoints a
 * policy permits. This module is the library's API, the names the README uses; the `airlock` CLI is
 * built on it. Plumbing for tooling (image builds, the engine client, schemas) is `airlock/internal`.
 */
export {
  createRunner,
  runAgent,
  containersRemoved,
  Runner,
  type RunnerOptions,
  type RunAgentOptions,
} from "./runner.js";
export type { RunEvent } from "./run/run-agent.js";
export type { AgentResult, RunStatus } from "./run/result.js";
export { runAgents, type RunAgentsOptions, type GroupResult } from "./group/run-agents.js";
export {
  loadPolicy,
  parsePolicy,
  definePolicy,
  type Policy,
  type PolicyInput,
  type Endpoint,
  type PackageSpec,
  type PipRequirement,
} from "./policy/index.js";
export { loadRunFile, type RunSpec, type GroupAgent, type WaitCondition, type RunFileInput } from "./group/run-file.js";
export * from "./errors.js";
export type { BackendName } from "./backends/backend.js";
export type { KubernetesOptions } from "./backends/kubernetes/config.js";
export type { LanguageName } from "./languages/names.js";
