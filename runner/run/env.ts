/**
 * The agent's environment: the variables its policy allows (taken from runAgent's `env`, else the
 * caller's environment), the policy's fixed values, and airlock's own AIRLOCK_* variables, over a
 * few defaults of airlock's (which the policy may override).
 * Nothing else from the host reaches the agent.
 */
import { RunOptionsError } from "../errors.js";
import type { Policy } from "../policy/index.js";

export interface EnvironmentSources {
  /** runAgent's `env`: values for the variables the policy allows (any other is refused). */
  given?: Record<string, string | undefined>;
  /** The caller's environment, for allowed variables `given` does not have. */
  hostEnv: NodeJS.ProcessEnv;
  /** airlock's defaults, under everything else. */
  defaults?: Record<string, string>;
  /** airlock's own variables, over everything else. */
  airlockVars?: Record<string, string>;
}

export function agentEnvironment(policy: Policy, sources: EnvironmentSources): Record<string, string> {
  const { given, hostEnv } = sources;
  const allowed = new Set(policy.env.allow);
  const refused = Object.keys(given ?? {}).filter((k) => !allowed.has(k) && !(k in policy.env.set));
  if (refused.length) {
    throw new RunOptionsError(
      `runAgent() was given ${refused.join(", ")} in env, but ${policy.source} does not allow ${refused.length === 1 ? "it" : "them"}`,
      `add ${refused.join(", ")} to env.allow in ${policy.source}, or stop passing ${refused.length === 1 ? "it" : "them"}`,
    );
  }
  const env: Record<string, string> = { ...sources.defaults };
  for (const name of policy.env.allow) {
    const value = given && name in given ? given[name] : hostEnv[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, policy.env.set, sources.airlockVars);
  return env;
}

export function toDockerEnv(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
