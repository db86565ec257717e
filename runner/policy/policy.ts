/**
 * Loading policies: from a YAML file (`loadPolicy`), YAML text (`parsePolicy`) or an object given in
 * code (`definePolicy`). All three validate with the zod schema and return the same normalized Policy,
 * or throw a PolicyError that names the file, line, column, field and fix of every problem.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { dirname, relative, resolve } from "node:path";
import { PolicyError } from "../errors.js";
import { parseEndpoint, type Endpoint } from "./endpoint.js";
import { parseHttpsEntry, type HttpsService } from "./https-service.js";
import { parsePackage, type PackageSpec } from "./package-spec.js";
import { parsePipRequirement, parseRequirementsText, readRequirementsFile, type PipRequirement } from "./pip-spec.js";
import type { LanguageName } from "../languages/names.js";
import { busEndpoint, DEFAULTS, parseMemory, policySchema, type PolicyInput } from "./schema.js";
import { BUS_KINDS, BUS_KIND_NAMES } from "../bus/registry.js";
import type { BusGrant, RightsPolicy } from "../bus/rights.js";
import { locate, parseYamlFile, zodIssuesToInputIssues, type KeyHints, type ParsedYaml } from "./locate.js";
import type { InputIssue } from "../errors.js";

export type { BusGrant };

export interface Policy extends RightsPolicy {
  name: string;
  description?: string;
  /** Absolute path of the file the policy came from, or "<inline>". */
  source: string;
  network: {
    disabled: boolean;
    allowedEndpoints: Endpoint[];
    /** HTTPS services by name, through the gate's egress proxy. */
    https: HttpsService[];
  };
  env: { allow: string[]; set: Record<string, string> };
  /** The language the policy says its agent is written in; undefined: decided by the agent file. */
  runtime?: LanguageName;
  packages: {
    npm: PackageSpec[];
    pip: PipRequirement[];
    /** The requirements.txt the pip list came from, when the policy names one. */
    pipFile?: string;
  };
  timeoutSeconds: number;
  resources: { memoryBytes: number; cpus: number; pids: number; outputBytes: number; outputFiles: number };
  workspace: { include: string[] };
  bus: { grants: BusGrant[]; requireRights: boolean };
}

/** Keys users bring from the Python Isolated Agents SDK (and other near misses), with their airlock names. */
const RENAMED: Record<string, string> = {
  allowed_endpoints: "network.allowedEndpoints",
  allowedEndpoints: "network.allowedEndpoints",
  allowed_env_vars: "env.allow",
  allowedEnvVars: "env.allow",
  pip_packages: "packages.pip (e.g. packages: { pip: [redis==5.2.1] })",
  pipPackages: "packages.pip",
  npm_packages: "packages.npm",
  requirements: "packages.pip (a list, or the path of a requirements.txt)",
  language: "runtime (node or python)",
  timeout_seconds: "timeoutSeconds",
  timeout: "timeoutSeconds",
  disabled: "network.disabled",
  endpoints: "network.allowedEndpoints",
  memory: "resources.memory",
  cpus: "resources.cpus",
  pids: "resources.pids",
  memory_limit: "resources.memory",
  cpu_limit: "resources.cpus",
};

/** The keys of a zod object schema and of the objects nested in it, by dotted path. */
function objectKeys(path: string, schema: unknown): Record<string, string[]> {
  const inner = schema instanceof z.ZodOptional ? schema.unwrap() : schema;
  if (!(inner instanceof z.ZodObject)) return {};
  const shape = inner.shape as Record<string, unknown>;
  return Object.assign(
    { [path]: Object.keys(shape) },
    ...Object.entries(shape).map(([k, v]) => objectKeys(`${path}.${k}`, v)),
  );
}

const HINTS: KeyHints = {
  known: {
    "": [
      "name",
      "description",
      "runtime",
      "network",
      "env",
      "packages",
      "timeoutSeconds",
      "resources",
      "workspace",
      "bus",
    ],
    packages: ["npm", "pip"],
    bus: [...BUS_KIND_NAMES, "requireRights"],
    // Each broker kind's section, as its own schema defines it.
    ...Object.assign({}, ...BUS_KIND_NAMES.map((k) => objectKeys(`bus.${k}`, BUS_KINDS[k].grantSchema))),
    workspace: ["include"],
    network: ["disabled", "allowedEndpoints", "https"],
    "network.https": ["host", "headers", "inspect"],
    env: ["allow", "set"],
    resources: ["memory", "cpus", "pids", "output", "outputFiles"],
  },
  renamed: RENAMED,
};

export async function loadPolicy(file: string): Promise<Policy> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === "ENOENT"
        ? "file not found"
        : code === "EISDIR"
          ? "is a directory, not a policy file"
          : `cannot read: ${(err as Error).message}`;
    throw new PolicyError(file, [
      { file, field: "", message, fix: "pass the path of a policy YAML file, e.g. policies/hello.yaml" },
    ]);
  }
  return parsePolicy(text, file, path);
}

export function parsePolicy(text: string, file = "<inline>", source = file): Policy {
  return validate(parseYamlFile(text, file), source);
}

/** A policy given in code; validated exactly like a file. */
export function definePolicy(input: PolicyInput, label = "<inline>"): Policy {
  return validate({ file: label, value: input, issues: [] }, label);
}

function validate(parsed: ParsedYaml, source: string): Policy {
  if (parsed.issues.length) throw new PolicyError(parsed.file, parsed.issues);
  const value = parsed.value;
  if (value === null || typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new PolicyError(parsed.file, [
      {
        file: parsed.file,
        field: "",
        line: 1,
        column: 1,
        message: "a policy must be a mapping of keys (name, network, env, ...)",
        fix: "start from an example in policies/, e.g. policies/hello.yaml",
      },
    ]);
  }
  const result = policySchema.safeParse(value, { reportInput: true });
  if (!result.success) throw new PolicyError(parsed.file, zodIssuesToInputIssues(parsed, result.error.issues, HINTS));
  return normalize(result.data, source, pipPackages(result.data, parsed, source));
}

/**
 * The policy's Python packages: its list, or the lines of the requirements.txt it names (relative to
 * the policy file), checked line by line. A problem in the file is reported with the file's line.
 */
function pipPackages(
  input: PolicyInput,
  parsed: ParsedYaml,
  source: string,
): { pip: PipRequirement[]; pipFile?: string } {
  const pip = Array.isArray(input.packages) ? undefined : input.packages?.pip;
  if (pip === undefined) return { pip: [] };
  if (Array.isArray(pip)) return { pip: pip.map(parsePipRequirement) };
  const base = source.startsWith("<") ? process.cwd() : dirname(source);
  const file = resolve(base, pip);
  const shown = relative(process.cwd(), file) || file;
  let text: string;
  try {
    text = readRequirementsFile(file);
  } catch (err) {
    throw new PolicyError(parsed.file, [
      {
        file: parsed.file,
        field: "packages.pip",
        ...locate(parsed, ["packages", "pip"]),
        message: `${shown}: ${(err as Error).message}`,
        fix: `give the path of a requirements.txt relative to ${source.startsWith("<") ? "the current folder" : "the policy file"}, or list the packages (pip: [redis==5.2.1])`,
      },
    ]);
  }
  const { requirements, problems } = parseRequirementsText(text);
  if (problems.length) {
    const issues: InputIssue[] = problems.map((p) => ({
      file: shown,
      field: `packages.pip (from ${parsed.file})`,
      line: p.line,
      column: 1,
      message: p.message,
      fix: p.fix,
    }));
    throw new PolicyError(shown, issues);
  }
  return { pip: requirements, pipFile: file };
}

function normalize(input: PolicyInput, source: string, pip: { pip: PipRequirement[]; pipFile?: string }): Policy {
  const endpoints = (input.network?.allowedEndpoints ?? []).map(parseEndpoint);
  const unique = [...new Map(endpoints.map((e) => [`${e.host}:${e.port}`, e])).values()];
  const https = [
    ...new Map((input.network?.https ?? []).map(parseHttpsEntry).map((s) => [`${s.host}:${s.port}`, s])).values(),
  ];
  return {
    name: input.name,
    ...(input.description ? { description: input.description } : {}),
    source,
    network: {
      disabled: input.network?.disabled ?? (unique.length === 0 && https.length === 0),
      allowedEndpoints: unique,
      https,
    },
    env: { allow: [...new Set(input.env?.allow ?? [])], set: { ...(input.env?.set ?? {}) } },
    ...(input.runtime ? { runtime: input.runtime } : {}),
    packages: {
      npm: (Array.isArray(input.packages) ? input.packages : (input.packages?.npm ?? [])).map(parsePackage),
      ...pip,
    },
    timeoutSeconds: input.timeoutSeconds ?? DEFAULTS.timeoutSeconds,
    resources: {
      memoryBytes: parseMemory(input.resources?.memory ?? DEFAULTS.memory)!,
      cpus: input.resources?.cpus ?? DEFAULTS.cpus,
      pids: input.resources?.pids ?? DEFAULTS.pids,
      outputBytes: parseMemory(input.resources?.output ?? DEFAULTS.output)!,
      outputFiles: input.resources?.outputFiles ?? DEFAULTS.outputFiles,
    },
    workspace: { include: [...(input.workspace?.include ?? [])] },
    bus: {
      grants: BUS_KIND_NAMES.flatMap((kind) => {
        const section = input.bus?.[kind] as { endpoint?: string; env?: string } | undefined;
        if (!section) return [];
        const raw = busEndpoint(kind, section, input.network?.allowedEndpoints ?? []).endpoint!;
        return [
          {
            kind,
            endpoint: parseEndpoint(raw),
            env: section.env ?? BUS_KINDS[kind].defaultEnv,
            grant: section as Record<string, unknown>,
          },
        ];
      }),
      requireRights: input.bus?.requireRights ?? false,
    },
  };
}
