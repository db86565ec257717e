/**
 * The shape of the sandbox a run needs (sandbox.ts SandboxShape): its language's image with the
 * policy's packages, the runtime it keeps on standby, the agent's uid:gid and the policy's resources.
 * A run computes it to claim a sandbox; a group computes it ahead of time to have one started. And
 * the container a sandbox of a shape is, wherever it is created (the pool, or a run that starts one).
 */
import type Docker from "dockerode";
import { SLOT_USER_VARIABLE } from "../../../gate/protocol.js";
import type { AgentLanguage } from "../../../languages/language.js";
import { agentSpec } from "../container-spec.js";
import type { Policy } from "../../../policy/index.js";
import type { AgentUser } from "../../../run/output.js";
import type { SandboxShape } from "./sandbox.js";

export function sandboxShape(imageId: string, language: AgentLanguage, policy: Policy, user: AgentUser): SandboxShape {
  return {
    image: imageId,
    standby: language.standby?.argv ?? [],
    user,
    memoryBytes: policy.resources.memoryBytes,
    cpus: policy.resources.cpus,
    pids: policy.resources.pids,
    output: { bytes: policy.resources.outputBytes, entries: policy.resources.outputFiles },
  };
}

/** The variables a sandbox's runtime on standby starts with (besides the image's): nothing of any run. */
export const STANDBY_ENV: Readonly<Record<string, string>> = { PYTHONUNBUFFERED: "1" };

/** Where a sandbox is created: its name, network and labels, and the host paths it mounts. */
export interface SandboxPlace {
  name: string;
  /** The airlock bridge's name. */
  network: string;
  /** Binds for /workspace (only a sandbox created for its run has any). */
  workspaceBinds: string[];
  bundleDir?: string;
  hostsFile: string;
  resolvConf: string;
  /** The trust files for HTTPS the gate terminates (a pooled sandbox's folder always has the folder, filled at its claim). */
  trustDir?: string;
  /** The run's refusals so far (/run/airlock): a pooled sandbox's folder has one, written from its claim on. */
  refusalsDir?: string;
  labels: Record<string, string>;
}

/**
 * A sandbox of `shape`: gated by its own init, which starts the shape's runtime on standby as its
 * uid:gid with STANDBY_ENV, within the shape's resources.
 */
export function sandboxSpec(shape: SandboxShape, place: SandboxPlace): Docker.ContainerCreateOptions {
  return agentSpec({
    ...place,
    image: shape.image,
    network: { mode: "gated", network: place.network },
    user: shape.user,
    env: [
      `${SLOT_USER_VARIABLE}=${shape.user.uid}:${shape.user.gid}`,
      ...Object.entries(STANDBY_ENV).map(([k, v]) => `${k}=${v}`),
    ],
    cmd: [...shape.standby],
    memoryBytes: shape.memoryBytes,
    cpus: shape.cpus,
    pids: shape.pids,
    maxFileBytes: shape.output.bytes,
    // Its own /output volume, which its init holds after the agent's exit until the runner copied it out.
    output: { limits: shape.output },
  });
}
