/**
 * /output as a filesystem of its own, so that the policy's output limits are quotas the kernel
 * enforces at every write (ENOSPC), not a count taken after the fact: a tmpfs exactly as large as
 * `resources.output` (rounded up to a page) with `resources.outputFiles` inodes. Nothing the agent
 * writes touches the host's disk while it runs; the runner copies /output out once it exits
 * (output-tar.ts), within the same limits. A tmpfs lives in memory and its pages are charged to the
 * memory limit of the container that writes them, so the agent's container gets the output's size
 * on top of `resources.memory` (written output then cannot push the agent out of its own memory).
 *
 * Shared by both backends: Docker mounts it as an anonymous volume of the local driver (removed with
 * its container: backends/docker/container-spec.ts), Kubernetes as a memory-backed emptyDir of the
 * same size.
 */
import { DEFAULTS, parseMemory } from "../policy/schema.js";
import type { AgentUser } from "./output.js";

/** The page (and host block) size every output entry is counted in. */
export const OUTPUT_BLOCK = 4096;

export interface OutputLimits {
  bytes: number;
  entries: number;
}

/** The policy's default limits: what a gate container's own /output volume is sized for. */
export const DEFAULT_OUTPUT_LIMITS: Readonly<OutputLimits> = {
  bytes: parseMemory(DEFAULTS.output)!,
  entries: DEFAULTS.outputFiles,
};

export function sameOutputLimits(a: OutputLimits, b: OutputLimits): boolean {
  return outputQuotaBytes(a) === outputQuotaBytes(b) && a.entries === b.entries;
}

/** The limit rounded up to whole pages (what a tmpfs can hold). */
export function outputQuotaBytes(limits: OutputLimits): number {
  return Math.ceil(limits.bytes / OUTPUT_BLOCK) * OUTPUT_BLOCK;
}

/** The tmpfs mount options: size, inodes (the root folder is one), owner, and nothing executable or special. */
export function outputTmpfsOptions(limits: OutputLimits, user: AgentUser): string {
  return `size=${outputQuotaBytes(limits)},nr_inodes=${limits.entries + 1},uid=${user.uid},gid=${user.gid},mode=0755,nosuid,nodev,noexec`;
}

/** The agent container's memory limit: the policy's, plus what /output may hold. */
export function agentMemoryBytes(memoryBytes: number, limits: OutputLimits): number {
  return memoryBytes + outputQuotaBytes(limits);
}
