/**
 * airlock: run AI agents in Docker containers whose egress is locked to the broker endpoints a
 * policy permits. This module is the library; the `airlock` CLI is built on it.
 */
export { agentNameFor, type RunAgentOptions, type RunEvent } from "./run/run-agent.js";
export type { AgentResult, RunStatus } from "./run/result.js";
export {
  loadPolicy,
  parsePolicy,
  definePolicy,
  policySchema,
  policyJsonSchema,
  parseEndpoint,
  DEFAULTS,
  type Policy,
  type PolicyInput,
  type Endpoint,
  type PackageSpec,
  type PipRequirement,
} from "./policy/index.js";
export { runAgents, type RunAgentsOptions, type GroupResult } from "./group/run-agents.js";
export {
  loadRunFile,
  runFileSchema,
  runFileJsonSchema,
  type RunSpec,
  type GroupAgent,
  type WaitCondition,
  type RunFileInput,
} from "./group/run-file.js";
export { junitXml } from "./group/junit.js";
export { kafkaPreflight, KafkaPreflightError } from "./bus/kafka-preflight.js";
export { createRunner, defaultRunner, runAgent, containersRemoved, Runner, type RunnerOptions } from "./runner.js";
export { cleanup, type CleanupReport, type CleanupOptions } from "./backends/docker/cleanup.js";
export { ensureImages, resolveBaseImage, type ImageSet, type BuiltImage } from "./images/images.js";
export { ensurePythonImage } from "./languages/python/image.js";
export { LANGUAGE_NAMES, type LanguageName } from "./languages/names.js";
export { assertDockerReachable, dockerClient } from "./docker/client.js";
export * from "./errors.js";
export { BACKEND_NAMES, type BackendName, type ExecutionBackend } from "./backends/backend.js";
export type { KubernetesOptions } from "./backends/kubernetes/config.js";
