/**
 * Names in a policy's bus section: an exact name, or a prefix ending in `*`, either of which may
 * contain `{run}` (the run's id: the group's for agents run together, so a producer and its
 * consumer share names while parallel runs never do) and `{agent}` (the agent's own name, so a
 * topic can say who may send on it). That is what every broker can express: Kafka ACLs know only
 * literal and prefixed names. Each broker kind translates them.
 */
import { z } from "zod";

export interface NamePattern {
  /** As written. */
  raw: string;
  /** With {run} replaced, without the trailing `*`. */
  name: string;
  prefix: boolean;
}

export const RUN_PLACEHOLDER = "{run}";
export const AGENT_PLACEHOLDER = "{agent}";

/** The agent's name as it appears in bus names ({agent}, AIRLOCK_BUS_AGENT): lower case, and nothing a broker reads as a separator or wildcard. */
export function busAgentToken(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, "_")
      .slice(0, 40) || "agent"
  );
}

export function patternProblem(raw: string): { message: string; fix: string } | undefined {
  const body = raw.endsWith("*") ? raw.slice(0, -1) : raw;
  if (body.includes("*"))
    return {
      message: `"${raw}" has a * that is not at the end`,
      fix: "use an exact name, or a prefix ending in * (e.g. events.{run}.*)",
    };
  if (/[?[\]\s]/.test(body))
    return {
      message: `"${raw}" has a wildcard or space airlock does not translate`,
      fix: "use an exact name, or a prefix ending in *",
    };
  if (/\{(?!(run|agent)\})/.test(body))
    return {
      message: `"${raw}" has a placeholder other than {run} and {agent}`,
      fix: "the placeholders are {run} (the run's id) and {agent} (the agent's name)",
    };
  if (raw === "*")
    return {
      message: `"*" grants every name on the broker`,
      fix: "name the prefix the agent needs, e.g. events.{run}.*",
    };
  return undefined;
}

export function resolvePattern(raw: string, run: string, agent = "agent"): NamePattern {
  const prefix = raw.endsWith("*");
  return {
    raw,
    name: (prefix ? raw.slice(0, -1) : raw).split(RUN_PLACEHOLDER).join(run).split(AGENT_PLACEHOLDER).join(agent),
    prefix,
  };
}

export const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A regular expression that matches the names (RabbitMQ's permissions are regular expressions). */
export function toRegExpSource(patterns: NamePattern[]): string {
  if (patterns.length === 0) return "^$";
  return `^(${patterns.map((p) => escapeRegExp(p.name) + (p.prefix ? ".*" : "")).join("|")})$`;
}

/** A Redis glob (`?*[]\` in the name escaped). */
export function toRedisGlob(p: NamePattern): string {
  return p.name.replace(/[?*[\]\\]/g, "\\$&") + (p.prefix ? "*" : "");
}

export function matches(p: NamePattern, name: string): boolean {
  return p.prefix ? name.startsWith(p.name) : name === p.name;
}

/** A name pattern in a policy, validated with the fix in its error. */
export const namePattern = z
  .string()
  .min(1)
  .superRefine((v, ctx) => {
    const p = patternProblem(v);
    if (p) ctx.addIssue({ code: "custom", message: p.message, params: { fix: p.fix } });
  });
