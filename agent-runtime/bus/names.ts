/**
 * Who this agent is on the bus, and which run it is in: the names the patterns put into subjects and
 * topics, and the ones a policy's {agent} and {run} stand for (so the broker can hold each agent to
 * its own names).
 */
import { randomUUID } from "node:crypto";

/** This agent's name in bus names (AIRLOCK_BUS_AGENT: lower case, no separators or wildcards). */
export function busAgent(): string {
  return (
    process.env.AIRLOCK_BUS_AGENT ??
    (process.env.AIRLOCK_AGENT_NAME ?? "agent").toLowerCase().replace(/[^a-z0-9_-]/g, "_")
  );
}

/** The run's namespace: shared by the agents of one `airlock up` (AIRLOCK_GROUP_RUN_ID). */
export function runNamespace(): string {
  return process.env.AIRLOCK_GROUP_RUN_ID ?? process.env.AIRLOCK_RUN_ID ?? "default";
}

export function messageId(): string {
  return randomUUID();
}

/** A name that goes into a subject or topic as one token. */
export function token(name: string, what: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name))
    throw new TypeError(`${what} "${name}" must be one token: letters, digits, - and _`);
  return name;
}
