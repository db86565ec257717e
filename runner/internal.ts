/**
 * airlock's plumbing, for tooling and airlock's own tests and benchmarks (`airlock/internal`): image
 * builds, the engine client, schemas, cleanup, the Kafka preflight. Not the library's API — that is
 * `airlock` (index.ts), the names the README uses — and it may change in any release.
 */
export { agentNameFor } from "./run/run-agent.js";
export { policySchema, policyJsonSchema, parseEndpoint, DEFAULTS } from "./policy/index.js";
export { runFileSchema, runFileJsonSchema } from "./group/run-file.js";
export { junitXml } from "./group/junit.js";
export { kafkaPreflight, KafkaPreflightError } from "./bus/kafka-preflight.js";
export { defaultRunner } from "./runner.js";
export { cleanup, type CleanupReport, type CleanupOptions } from "./backends/docker/cleanup.js";
export { ensureImages, resolveBaseImage, type ImageSet, type BuiltImage } from "./images/images.js";
export { ensurePythonImage } from "./languages/python/image.js";
export { LANGUAGE_NAMES } from "./languages/names.js";
export { assertDockerReachable, dockerClient } from "./backends/docker/engine/client.js";
export { BACKEND_NAMES, type ExecutionBackend } from "./backends/backend.js";
