/**
 * The rights file: what an Isolated Agents SDK policy has no words for — rights on the brokers, and
 * HTTPS services by name — kept beside the scripts, so that the scripts stay as the SDK's page
 * writes them. One file per folder, `airlock.yaml`, keyed by agent (the function's name, or the
 * script's name for an agent given as a path); each entry takes the policy's own `bus` section and
 * `https` list:
 *
 *   producer_agent:
 *     bus:
 *       redis: { publish: [agent-events] }
 *
 * Bounded (64 KiB) and checked: a problem names the file, the entry and the fix.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { parseDocument } from "yaml";
import { PolicyError } from "../errors.js";

export const RIGHTS_FILE = "airlock.yaml";
const MAX_BYTES = 64 * 1024;

export interface AgentRights {
  bus?: Record<string, unknown>;
  https?: unknown[];
}

export interface RightsFile {
  file: string;
  agents: Record<string, AgentRights>;
}

/** The rights file beside `script`, or undefined when there is none. */
export async function findRightsFile(script: string): Promise<string | undefined> {
  const file = join(dirname(script), RIGHTS_FILE);
  return (await stat(file).catch(() => undefined))?.isFile() ? file : undefined; // none: no rights given
}

export async function readRightsFile(file: string): Promise<RightsFile> {
  const shown = relative(process.cwd(), file) || file;
  const fail = (field: string, message: string, fix: string): never => {
    throw new PolicyError(shown, [{ file: shown, field, message, fix }]);
  };
  const size = (await stat(file)).size;
  if (size > MAX_BYTES) fail("", `is ${size} bytes; a rights file is at most ${MAX_BYTES}`, "keep only rights in it");
  const doc = parseDocument(await readFile(file, "utf8"));
  if (doc.errors.length) fail("", doc.errors[0]!.message, "fix the YAML");
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== "object" || Array.isArray(value))
    fail(
      "",
      "must map agent names to their rights",
      "e.g.  producer_agent: { bus: { redis: { publish: [agent-events] } } }",
    );
  const agents: Record<string, AgentRights> = {};
  for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
    if (entry === null || typeof entry !== "object" || Array.isArray(entry))
      fail(
        name,
        "must be a mapping with bus: and/or https:",
        `e.g.  ${name}: { bus: { redis: { subscribe: [agent-events] } } }`,
      );
    const { bus, https, ...rest } = entry as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length)
      fail(
        `${name}.${extra[0]}`,
        "is not a rights key (bus, https)",
        "the rest of the policy stays in the script's Policy(...); here go bus: and https: only",
      );
    if (bus !== undefined && (bus === null || typeof bus !== "object" || Array.isArray(bus)))
      fail(
        `${name}.bus`,
        "must be the policy's bus section (a mapping of broker kinds)",
        "e.g.  bus: { redis: { publish: [agent-events] } }",
      );
    if (https !== undefined && !Array.isArray(https))
      fail(`${name}.https`, "must be a list of HTTPS services", "e.g.  https: [api.openai.com]");
    agents[name] = {
      ...(bus ? { bus: bus as Record<string, unknown> } : {}),
      ...(https ? { https: https as unknown[] } : {}),
    };
  }
  return { file: shown, agents };
}
