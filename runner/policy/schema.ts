/**
 * The policy file format. This zod schema is the single source of truth: the TypeScript types,
 * the validation errors and the published JSON Schema (policies/policy.schema.json) all come from it.
 * Field names are a public contract.
 */
import { z } from "zod";
import { endpointProblem, parseEndpoint } from "./endpoint.js";
import {
  headerProblem,
  headerVariables,
  httpsServiceProblem,
  parseHttpsEntry,
  type HttpsEntry,
} from "./https-service.js";
import { packageProblem } from "./package-spec.js";
import { pipProblem } from "./pip-spec.js";
import { LANGUAGE_NAMES } from "../languages/names.js";
import { BUS_KINDS, BUS_KIND_NAMES, type BusKindName } from "../bus/registry.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MEMORY = /^(\d+(\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;

/** Variables the runner sets itself; a policy cannot override them. */
export const RESERVED_ENV_PREFIX = "AIRLOCK_";

function refineWith(check: (value: string) => { message: string; fix: string } | undefined) {
  return (value: string, ctx: z.RefinementCtx) => {
    const problem = check(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem.message, params: { fix: problem.fix } });
  };
}

const envName = z
  .string()
  .regex(ENV_NAME, { message: "not a valid environment variable name" })
  .refine((n) => !n.startsWith(RESERVED_ENV_PREFIX), {
    message: `names starting with ${RESERVED_ENV_PREFIX} are set by airlock itself`,
  });

export function memoryProblem(value: string | number): { message: string; fix: string } | undefined {
  const bytes = parseMemory(value);
  if (bytes === undefined)
    return { message: `"${value}" is not a memory size`, fix: 'write a size like "512m" or "2g"' };
  if (bytes < 32 * 1024 * 1024)
    return { message: `${value} is below the 32m minimum`, fix: 'give the agent at least "32m"' };
  return undefined;
}

export function outputProblem(value: string | number): { message: string; fix: string } | undefined {
  const bytes = parseMemory(value);
  if (bytes === undefined) return { message: `"${value}" is not a size`, fix: 'write a size like "100m" or "1g"' };
  if (bytes < 1024 * 1024) return { message: `${value} is below the 1m minimum`, fix: 'allow at least "1m"' };
  return undefined;
}

export function parseMemory(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value > 0 ? value : undefined;
  const m = MEMORY.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[3] ?? "b").toLowerCase()[0];
  const scale = unit === "g" ? 1024 ** 3 : unit === "m" ? 1024 ** 2 : unit === "k" ? 1024 : 1;
  return Math.floor(n * scale);
}

export const DEFAULTS = {
  timeoutSeconds: 300,
  memory: "512m",
  cpus: 1,
  pids: 256,
  output: "1g",
  outputFiles: 10_000,
} as const;

const npmPackageList = z
  .array(z.string().superRefine(refineWith(packageProblem)))
  .describe("npm packages, as name@version.");

export const policySchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
        message: "use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit",
      })
      .describe("Short name of the policy; shown in results and logs."),
    description: z.string().optional().describe("Free text for people reading the policy."),
    network: z
      .strictObject({
        disabled: z
          .boolean()
          .optional()
          .describe("No network at all. Defaults to true when neither allowedEndpoints nor https lists anything."),
        allowedEndpoints: z
          .array(z.string().superRefine(refineWith(endpointProblem)))
          .min(1, { message: "the list is empty" })
          .optional()
          .describe(
            "TCP endpoints the agent may connect to, as host:port. host is an IPv4 address, a DNS name (resolved on the host when the agent starts) or localhost / 127.0.0.1 (the host machine's loopback). Everything else is refused.",
          ),
        https: z
          .array(
            z.union(
              [
                z.string().superRefine(refineWith(httpsServiceProblem)),
                z.strictObject({
                  host: z
                    .string()
                    .superRefine(refineWith(httpsServiceProblem))
                    .describe(
                      "The service's name, as in the short form: api.example.com, api.example.com:8443, *.example.com.",
                    ),
                  headers: z.record(z.string(), z.string()).optional().describe(
                    // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
                    "Headers the gate adds to every request (it terminates TLS to do so). ${VAR} in a value is taken from the caller's environment (or runAgent's env) on the host, and never passed into the sandbox.",
                  ),
                  inspect: z
                    .boolean()
                    .optional()
                    .describe(
                      "Terminate TLS at the gate to check each request's Host / :authority against the name, without adding headers.",
                    ),
                }),
              ],
              { error: "must be a name (api.example.com) or a mapping with host: and headers: or inspect:" },
            ),
          )
          .min(1, { message: "the list is empty" })
          .optional()
          .describe(
            "HTTPS services the agent may call, by name: api.example.com (port 443), api.example.com:8443, or *.example.com (one label under it). The gate's egress proxy reads the name each TLS connection asks for (SNI) and lets through only a listed one, resolving it itself on the host: another name on the same address, no name, an IP address and plain HTTP are refused. An entry written as a mapping with headers: (or inspect: true) is terminated at the gate, which checks Host against the name and adds the headers.",
          ),
      })
      .optional()
      .describe("Egress. Default deny: only the listed TCP endpoints are reachable."),
    env: z
      .strictObject({
        allow: z
          .array(envName)
          .optional()
          .describe(
            "Names of variables that may pass from the caller's environment (or runAgent's env) into the agent.",
          ),
        set: z.record(envName, z.string()).optional().describe("Fixed values set in the agent's environment."),
      })
      .optional()
      .describe("Environment. Nothing from the host environment reaches the agent unless listed here."),
    runtime: z
      .enum(LANGUAGE_NAMES)
      .optional()
      .describe(
        "The language the agent is written in, which picks its image and runtime: node (TypeScript/JavaScript) or python. Default: from the agent file's extension (.py is python), else node.",
      ),
    packages: z
      .union(
        [
          npmPackageList,
          z.strictObject({
            npm: npmPackageList.optional(),
            pip: z
              .union(
                [
                  z
                    .array(z.string().superRefine(refineWith(pipProblem)))
                    .describe("Requirement specifiers, e.g. redis==5.2.1 (a version is required)."),
                  z.string().min(1).describe("Path of a requirements.txt, relative to the policy file."),
                ],
                { error: "must be a list of requirements (- redis==5.2.1) or the path of a requirements.txt" },
              )
              .optional()
              .describe(
                "Python packages for a Python agent: a list of requirements, or the path of a requirements.txt (relative to this file). Installed with the host's pip settings when the image is built, never at run time.",
              ),
          }),
        ],
        { error: "must be a list of npm packages (- ioredis@5.9.2), or npm: [...] and pip: [...] for each language" },
      )
      .optional()
      .describe(
        "Packages the agent imports, installed into a cached image layer when the image is built, never at run time: a list of npm packages (name@version), or npm: and pip: lists.",
      ),
    timeoutSeconds: z
      .number()
      .int()
      .positive()
      .max(7 * 24 * 3600)
      .optional()
      .describe(
        `Wall-clock limit. At the limit the agent gets SIGTERM, then SIGKILL after a short grace. Default ${DEFAULTS.timeoutSeconds}.`,
      ),
    resources: z
      .strictObject({
        memory: z
          .union([z.string(), z.number().int().positive()], {
            error: 'must be a size like "512m" or a number of bytes',
          })
          .superRefine((v, ctx) => refineWith(() => memoryProblem(v))(String(v), ctx))
          .optional()
          .describe(`Memory limit (no swap), e.g. "512m", "2g". Default "${DEFAULTS.memory}".`),
        cpus: z
          .number()
          .positive()
          .max(256)
          .optional()
          .describe(`CPU limit in cores, e.g. 0.5. Default ${DEFAULTS.cpus}.`),
        pids: z
          .number()
          .int()
          .min(16)
          .max(1_000_000)
          .optional()
          .describe(`Maximum number of processes and threads. Default ${DEFAULTS.pids}.`),
        output: z
          .union([z.string(), z.number().int().positive()], {
            error: 'must be a size like "100m" or a number of bytes',
          })
          .superRefine((v, ctx) => refineWith(() => outputProblem(v))(String(v), ctx))
          .optional()
          .describe(
            `Most the agent may write to /output, a filesystem of exactly this size: writes past it fail (ENOSPC) and the run fails with "output limit reached". /output is in memory until the run ends (counted in the container's memory, on top of resources.memory) and copied to the output folder after. Default "${DEFAULTS.output}".`,
          ),
        outputFiles: z
          .number()
          .int()
          .min(1)
          .max(10_000_000)
          .optional()
          .describe(
            `Most entries (files, folders, links) /output holds: its filesystem has this many inodes, so creating more fails, and the run fails with "output limit reached". Default ${DEFAULTS.outputFiles}.`,
          ),
      })
      .optional()
      .describe("Limits for the agent's container."),
    bus: z
      .strictObject({
        ...(Object.fromEntries(BUS_KIND_NAMES.map((k) => [k, BUS_KINDS[k].grantSchema.optional()])) as {
          [K in BusKindName]: z.ZodOptional<(typeof BUS_KINDS)[K]["grantSchema"]>;
        }),
        requireRights: z
          .boolean()
          .optional()
          .describe(
            "Refuse to run when the runner has no admin access to a broker named here (default: run with the network gate alone, and say that the agent has full client rights there).",
          ),
      })
      .optional()
      .describe(
        "What the agent may do on each broker. The runner gives every run its own broker identity with exactly these rights, passes its credentials in the section's env variable, and deletes it when the run ends.",
      ),
    workspace: z
      .strictObject({
        include: z
          .array(
            z
              .string()
              .min(1)
              .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
                message: "must be a path inside the working directory",
              }),
          )
          .optional()
          .describe(
            "Files in the working directory that look like secrets (.env, *.pem, .npmrc, ...) but may be mounted anyway, as paths relative to it or file names (* matches within a name).",
          ),
      })
      .optional()
      .describe(
        "The working directory mounted read-only at /workspace (when a run asks for one). Secret-looking files are kept out unless listed here.",
      ),
  })
  .superRefine((p, ctx) => {
    if (p.network?.disabled === true && (p.network.allowedEndpoints?.length || p.network.https?.length)) {
      ctx.addIssue({
        code: "custom",
        path: ["network", "disabled"],
        message: `is true but ${p.network.allowedEndpoints?.length ? `allowedEndpoints lists ${p.network.allowedEndpoints.length} endpoint(s)` : `https lists ${p.network.https?.length} service(s)`}`,
        params: { fix: "remove disabled: true to allow what is listed, or remove the lists" },
      });
    }
    if (p.network?.disabled === false && !p.network.allowedEndpoints && !p.network.https) {
      ctx.addIssue({
        code: "custom",
        path: ["network"],
        message:
          "disabled is false but neither allowedEndpoints nor https lists anything, so nothing would be reachable",
        params: {
          fix: "list endpoints under network.allowedEndpoints or services under network.https, or set disabled: true",
        },
      });
    }
    httpsProblems(p, ctx);
    busProblems(p, ctx);
    const allowed = new Set(p.env?.allow ?? []);
    for (const name of Object.keys(p.env?.set ?? {})) {
      if (allowed.has(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["env", "set", name],
          message: `${name} is both allowed from the caller and set to a fixed value`,
          params: { fix: `keep it in one of env.allow or env.set` },
        });
      }
    }
  })
  .describe("An airlock policy: what an agent's container may reach, see and use.");

/** The broker a bus section names, as one of network.allowedEndpoints; undefined with the problem when there is none. */
export function busEndpoint(
  kind: BusKindName,
  section: { endpoint?: string | undefined },
  allowedEndpoints: string[],
): { endpoint?: string; problem?: { message: string; fix: string } } {
  const valid = allowedEndpoints.filter((e) => !endpointProblem(e)).map(parseEndpoint);
  const norm = (h: string) => (h === "localhost" ? "127.0.0.1" : h.toLowerCase());
  const port = BUS_KINDS[kind].defaultPort;
  if (section.endpoint !== undefined) {
    const bad = endpointProblem(section.endpoint);
    if (bad) return { problem: bad };
    const want = parseEndpoint(section.endpoint);
    const found = valid.find((e) => e.port === want.port && norm(e.host) === norm(want.host));
    if (!found)
      return {
        problem: {
          message: `${section.endpoint} is not in network.allowedEndpoints, so the agent could not reach it`,
          fix: `add ${section.endpoint} to network.allowedEndpoints`,
        },
      };
    return { endpoint: found.raw };
  }
  const candidates = valid.filter((e) => e.port === port);
  if (candidates.length === 1) return { endpoint: candidates[0]!.raw };
  if (candidates.length === 0)
    return {
      problem: {
        message: `names no endpoint, and network.allowedEndpoints has none on port ${port}`,
        fix: `set bus.${kind}.endpoint to the broker's host:port, and list it in network.allowedEndpoints`,
      },
    };
  return {
    problem: {
      message: `names no endpoint, and network.allowedEndpoints has ${candidates.length} on port ${port}`,
      fix: `set bus.${kind}.endpoint to the one it is for`,
    },
  };
}

interface BusFields {
  network?: { allowedEndpoints?: string[] | undefined } | undefined;
  env?: { allow?: string[] | undefined; set?: Record<string, string> | undefined } | undefined;
  bus?: { [K in BusKindName]?: { endpoint?: string | undefined; env?: string | undefined } | undefined } | undefined;
}

function busProblems(p: BusFields, ctx: z.RefinementCtx): void {
  const allowedEndpoints = p.network?.allowedEndpoints ?? [];
  const taken = new Map<string, string>();
  for (const kind of BUS_KIND_NAMES) {
    const section = p.bus?.[kind];
    if (!section) continue;
    const { problem } = busEndpoint(kind, section, allowedEndpoints);
    if (problem)
      ctx.addIssue({
        code: "custom",
        path: ["bus", kind, ...(section.endpoint !== undefined ? ["endpoint"] : [])],
        message: problem.message,
        params: { fix: problem.fix },
      });
    const envName = section.env ?? BUS_KINDS[kind].defaultEnv;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName))
      ctx.addIssue({
        code: "custom",
        path: ["bus", kind, "env"],
        message: `"${envName}" is not a valid environment variable name`,
        params: { fix: "use letters, digits and _" },
      });
    for (const [field, names] of [
      ["allow", p.env?.allow ?? []],
      ["set", Object.keys(p.env?.set ?? {})],
    ] as const) {
      if (names.includes(envName))
        ctx.addIssue({
          code: "custom",
          path: ["env", field],
          message: `${envName} is set by bus.${kind} with the run's own credentials`,
          params: { fix: `remove ${envName} from env.${field}` },
        });
    }
    const other = taken.get(envName);
    if (other)
      ctx.addIssue({
        code: "custom",
        path: ["bus", kind, "env"],
        message: `${envName} is already used by bus.${other}`,
        params: { fix: "give each broker its own variable" },
      });
    taken.set(envName, kind);
  }
}

/**
 * Inside the sandbox a listed HTTPS name is the agent's own 127.0.0.1, its port taken to the gate's
 * egress proxy: so no name may also be an L4 endpoint, and no port a forwarded localhost one.
 */
function httpsProblems(
  p: {
    network?: { allowedEndpoints?: string[] | undefined; https?: HttpsEntry[] | undefined } | undefined;
    env?: { allow?: string[] | undefined; set?: Record<string, string> | undefined } | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const network = p.network ?? {};
  const endpoints = (network.allowedEndpoints ?? []).filter((e) => !endpointProblem(e)).map(parseEndpoint);
  const seen = new Map<string, string>();
  (network.https ?? []).forEach((entry, i) => {
    const raw = typeof entry === "string" ? entry : entry.host;
    if (httpsServiceProblem(raw)) return;
    const service = parseHttpsEntry(entry);
    const key = `${service.host}:${service.port}`;
    const settings = JSON.stringify([service.terminate, service.headers]);
    if (seen.has(key) && seen.get(key) !== settings)
      ctx.addIssue({
        code: "custom",
        path: ["network", "https", i],
        message: `${key} is listed twice, with different headers or inspect`,
        params: { fix: "list each service once" },
      });
    seen.set(key, settings);
    for (const header of service.headers) {
      const problem = headerProblem(header.name, header.value);
      if (problem) {
        ctx.addIssue({
          code: "custom",
          path: ["network", "https", i, "headers", header.name],
          message: problem.message,
          params: { fix: problem.fix },
        });
        continue;
      }
      for (const variable of headerVariables(header.value)) {
        for (const [field, names] of [
          ["allow", p.env?.allow ?? []],
          ["set", Object.keys(p.env?.set ?? {})],
        ] as const)
          if (names.includes(variable))
            ctx.addIssue({
              code: "custom",
              path: ["env", field],
              message: `${variable} is a secret the gate adds to ${service.host} (network.https headers), so it never enters the sandbox`,
              params: {
                fix: `remove ${variable} from env.${field}: the agent calls ${service.host} without it, and the gate adds it`,
              },
            });
      }
    }
    const sameName = endpoints.find((e) => e.kind === "dns" && e.host === service.host);
    if (sameName)
      ctx.addIssue({
        code: "custom",
        path: ["network", "https", i],
        message: `${service.host} is also in allowedEndpoints (${sameName.raw}): a name is either checked by name here or pinned to its address there`,
        params: {
          fix: `remove ${sameName.raw} from allowedEndpoints (HTTPS to it is checked by name), or ${raw} from https`,
        },
      });
    const samePort = endpoints.find((e) => e.kind === "loopback" && e.port === service.port);
    if (samePort)
      ctx.addIssue({
        code: "custom",
        path: ["network", "https", i],
        message: `port ${service.port} is also ${samePort.raw} in allowedEndpoints: inside the sandbox both would be 127.0.0.1:${service.port}`,
        params: {
          fix: `serve the host's service on another port, or list ${service.host} on another port (${service.host}:PORT)`,
        },
      });
  });
}

/** What a policy file contains, as written (optional fields may be absent). */
export type PolicyInput = z.input<typeof policySchema>;

/** Draft-07 JSON Schema for editors (yaml-language-server) and other tools. */
export function policyJsonSchema(): Record<string, unknown> {
  return draft07(policySchema, "https://airlock.dev/schemas/policy.schema.json", "airlock policy");
}

/** A zod schema as draft-07 JSON Schema, describing what a file may contain (input, not output). */
export function draft07(schema: z.ZodType, id: string, title: string): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: "draft-7", io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    $id: id,
    title,
    ...Object.fromEntries(Object.entries(json).filter(([k]) => k !== "$schema")),
  };
}
