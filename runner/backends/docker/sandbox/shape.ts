/**
 * The shape of the sandbox a run needs (sandbox.ts SandboxShape): its language's image with the
 * policy's packages, the runtime it keeps on standby, the agent's uid:gid and the policy's resources.
 * A run computes it to claim a sandbox; a group computes it ahead of time to have one started.
 */
import type { AgentLanguage } from "../../../languages/language.js";
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
    maxFileBytes: policy.resources.outputBytes,
  };
}
