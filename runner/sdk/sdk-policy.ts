/**
 * An Isolated Agents SDK policy (`Policy(network=NetworkPolicy(allowed_endpoints=…), allowed_env_vars,
 * pip_packages, timeout_seconds)`, as the Python front end sends it) turned into an airlock policy,
 * and every problem reported in the SDK's own words: the script that called run_agent, the keyword
 * (`NetworkPolicy(allowed_endpoints=…)[1]`) and the fix.
 *
 * The SDK has no words for rights on a broker, so they come from the rights file beside the script
 * (rights-file.ts) or the front end's `bus=` keyword. A broker endpoint the policy lists with no
 * rights for it gets a run identity with none: every operation is refused and reported with the
 * line to add, never allowed by default. The variables that carry a broker's connection (REDIS_*,
 * RABBITMQ_URL, KAFKA_BROKERS, NATS_URL, MQTT_URL) are the run's own identity, never the host's
 * values, even when allowed_env_vars names them.
 */
import { z } from "zod";
import { AirlockError, type InputIssue, PolicyError } from "../errors.js";
import type { PolicyInput } from "../policy/index.js";
import { parseEndpoint } from "../policy/endpoint.js";
import { BUS_KIND_NAMES, BUS_KINDS, type BusKindName } from "../bus/registry.js";
import { basename } from "node:path";
import { NOTHING } from "../learn/learn.js";
import { type AgentRights, RIGHTS_FILE } from "./rights-file.js";

/** What the front end sends: run_agent's arguments, with the agent already written to a file. */
export const sdkRequestSchema = z.strictObject({
  /** The agent file to run: the one the front end wrote from the function, or the script given as a path. */
  agent: z.string().min(1),
  /** The agent's name: the function's, or the script's file name without .py. */
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/),
  /** Where run_agent was called: named in every error. */
  caller: z.strictObject({ file: z.string().min(1), line: z.number().int().positive().optional() }),
  working_dir: z.string().min(1).nullable().optional(),
  host_output_path: z.string().min(1),
  /** The Python the front end runs in: its pip resolves unpinned packages once (pins.ts). */
  python: z.string().min(1).optional(),
  policy: z.strictObject({
    network: z
      .strictObject({
        disabled: z.boolean().nullable().optional(),
        allowed_endpoints: z.array(z.string()).nullable().optional(),
      })
      .nullable()
      .optional(),
    allowed_env_vars: z.array(z.string()).nullable().optional(),
    pip_packages: z.array(z.string()).nullable().optional(),
    timeout_seconds: z.number().positive().nullable().optional(),
    /** airlock's keyword: bus rights in code (the policy's `bus` section), instead of the rights file. */
    bus: z.record(z.string(), z.unknown()).nullable().optional(),
    /** airlock's keyword: HTTPS services by name (the policy's `network.https`). */
    https: z.array(z.unknown()).nullable().optional(),
  }),
});
export type SdkRequest = z.infer<typeof sdkRequestSchema>;

/** The request itself is malformed (a front end of another version, or a hand-written one). */
export class SdkRequestError extends AirlockError {
  constructor(detail: string) {
    super("SDK_REQUEST_INVALID", `the Python front end's request: ${detail}`, {
      fix: "install the front end from the same airlock package as the CLI: pip install <airlock package>/python",
    });
  }
}

/** Each kind's variable in the SDK's scripts, and every variable the run's identity sets for it. */
export const SDK_BUS_ENV: Record<BusKindName, { env: string; provides: string[] }> = {
  redis: { env: "REDIS_URL", provides: ["REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD"] },
  rabbitmq: { env: "RABBITMQ_URL", provides: ["RABBITMQ_URL", "AMQP_URL"] },
  kafka: { env: "KAFKA_BROKERS", provides: ["KAFKA_BROKERS", "KAFKA_USERNAME", "KAFKA_PASSWORD"] },
  nats: { env: "NATS_URL", provides: ["NATS_URL"] },
  mqtt: { env: "MQTT_URL", provides: ["MQTT_URL"] },
};

const LOCAL = new Set(["localhost", "127.0.0.1", "::1"]);

/** The SDK's keyword for an airlock policy field, for errors. */
export function sdkField(field: string, rightsFile: string | undefined, agent: string): string {
  const rename: [RegExp, string][] = [
    [/^network\.allowedEndpoints/, "NetworkPolicy(allowed_endpoints=…)"],
    [/^network\.disabled/, "NetworkPolicy(disabled=…)"],
    [/^network\.https/, "Policy(https=…)"],
    [/^env\.allow/, "Policy(allowed_env_vars=…)"],
    [/^packages\.pip/, "Policy(pip_packages=…)"],
    [/^timeoutSeconds/, "Policy(timeout_seconds=…)"],
  ];
  for (const [pattern, keyword] of rename) if (pattern.test(field)) return field.replace(pattern, keyword);
  if (field.startsWith("bus"))
    return rightsFile ? `${agent}.${field} in ${rightsFile}` : `Policy(bus=…)${field.slice(3)}`;
  return field;
}

/**
 * The rights of a broker the policy reaches with none given: nothing. Redis allows a command class
 * only with some name granted, so its lists hold one name that matches nothing (as learn mode's
 * do): the refusal then names the channel or key, and so does its fix.
 */
function rightlessGrant(kind: BusKindName): Record<string, unknown> {
  if (kind !== "redis") return {};
  return { publish: [NOTHING], subscribe: [NOTHING], keys: { read: [NOTHING], write: [NOTHING] } };
}

export interface TranslatedPolicy {
  policy: PolicyInput;
  /** Brokers the policy reaches with no rights given: their identity may do nothing (the fix names the file). */
  rightless: BusKindName[];
  /** allowed_env_vars entries the run's broker identity sets instead of the host. */
  fromIdentity: string[];
}

/** The airlock policy for one SDK agent; `pip` is the package list already pinned (pins.ts). */
export function translatePolicy(request: SdkRequest, rights: AgentRights | undefined, pip: string[]): TranslatedPolicy {
  const p = request.policy;
  // The same endpoint twice (kafka-1 and kafka-2 both pointed at localhost) is one endpoint.
  const endpoints = [...new Set(p.network?.allowed_endpoints ?? [])];
  const bus: Record<string, Record<string, unknown>> = {};
  const given = (p.bus ?? rights?.bus ?? {}) as Record<string, unknown>;
  for (const [kind, section] of Object.entries(given))
    bus[kind] =
      section && typeof section === "object" && !Array.isArray(section)
        ? { ...(section as object) }
        : (section as never);
  // A broker the SDK policy reaches at its usual port, with no rights: an identity that may do nothing.
  const rightless: BusKindName[] = [];
  for (const raw of endpoints) {
    let endpoint: { host: string; port: number };
    try {
      endpoint = parseEndpoint(raw);
    } catch {
      continue; // reported by the policy's own check, with its fix
    }
    const kind = BUS_KIND_NAMES.find((k) => BUS_KINDS[k].defaultPort === endpoint.port);
    if (kind && !bus[kind] && LOCAL.has(endpoint.host)) {
      bus[kind] = rightlessGrant(kind);
      rightless.push(kind);
    }
  }
  for (const [kind, section] of Object.entries(bus))
    if (kind in SDK_BUS_ENV && section && typeof section === "object" && !("env" in section))
      section.env = SDK_BUS_ENV[kind as BusKindName].env;
  const provided = new Set(Object.keys(bus).flatMap((k) => SDK_BUS_ENV[k as BusKindName]?.provides ?? []));
  const allow = p.allowed_env_vars ?? [];
  const https = p.https ?? rights?.https;
  const passed = allow.filter((v) => !provided.has(v));
  const policy: PolicyInput = {
    name: request.name,
    description: `${request.name} from ${request.caller.file} (Isolated Agents SDK front end)`,
    runtime: "python",
    // The SDK's empty lists are "nothing": airlock leaves such a field out.
    network: {
      ...(typeof p.network?.disabled === "boolean" ? { disabled: p.network.disabled } : {}),
      ...(endpoints.length ? { allowedEndpoints: endpoints } : {}),
      ...(https?.length ? { https: https as never } : {}),
    },
    ...(passed.length ? { env: { allow: passed } } : {}),
    ...(pip.length ? { packages: { pip } } : {}),
    ...(typeof p.timeout_seconds === "number" ? { timeoutSeconds: Math.ceil(p.timeout_seconds) } : {}),
    ...(Object.keys(bus).length ? { bus: bus as never } : {}),
  };
  return { policy, rightless, fromIdentity: allow.filter((v) => provided.has(v)) };
}

/** A policy problem, reported against the script that called run_agent (and the rights file for bus lines). */
export function inSdkTerms(err: PolicyError, request: SdkRequest, rightsFile: string | undefined): PolicyError {
  const file = request.caller.line ? `${request.caller.file}:${request.caller.line}` : request.caller.file;
  const issues: InputIssue[] = err.issues.map((i) => {
    const { line: _line, column: _column, ...rest } = i;
    return { ...rest, file, field: sdkField(i.field, rightsFile, request.name) };
  });
  return new PolicyError(file, issues);
}

/**
 * A refusal's fix (or a failure reason) in the SDK user's terms: an endpoint goes in the script's
 * NetworkPolicy, a broker right in the agent's entry of the rights file (or Policy(bus=…) when the
 * rights came from code). " in <the policy's file>" after a policy path goes: each says its own file.
 */
export function sdkFix(text: string, request: SdkRequest, rightsFile: string | undefined): string {
  const script = basename(request.caller.file);
  const policyFile = ` in ${request.caller.file}`;
  const rights = rightsFile ?? RIGHTS_FILE;
  const inCode = Boolean(request.policy.bus) && !rightsFile;
  let busNamed = false;
  const out = text
    .split(policyFile)
    .join("")
    .replace(/\bnetwork\.allowedEndpoints\b/g, `NetworkPolicy(allowed_endpoints=[…]) in ${script}`)
    .replace(/\bnetwork\.https\b/g, `Policy(https=[…]) in ${script}`)
    .replace(/\bbus\.([A-Za-z][\w.]*[A-Za-z])/g, (_m, path: string) => {
      busNamed = true;
      return inCode ? `Policy(bus=…) ${path}` : `${request.name}.bus.${path}`;
    });
  // Say once where the bus lines go.
  return busNamed && !inCode ? `${out} (in ${rights})` : out;
}
