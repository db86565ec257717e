/**
 * The policy file format. This zod schema is the single source of truth: the TypeScript types,
 * the validation errors and the published JSON Schema (policies/policy.schema.json) all come from it.
 * Field names are a public contract.
 */
import { z } from "zod";
import { endpointProblem } from "./endpoint.js";
import { packageProblem } from "./package-spec.js";

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
  .refine((n) => !n.startsWith(RESERVED_ENV_PREFIX), { message: `names starting with ${RESERVED_ENV_PREFIX} are set by airlock itself` });

export function memoryProblem(value: string | number): { message: string; fix: string } | undefined {
  const bytes = parseMemory(value);
  if (bytes === undefined) return { message: `"${value}" is not a memory size`, fix: 'write a size like "512m" or "2g"' };
  if (bytes < 32 * 1024 * 1024) return { message: `${value} is below the 32m minimum`, fix: 'give the agent at least "32m"' };
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

export const policySchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { message: "use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit" })
      .describe("Short name of the policy; shown in results and logs."),
    description: z.string().optional().describe("Free text for people reading the policy."),
    network: z
      .strictObject({
        disabled: z
          .boolean()
          .optional()
          .describe("No network at all. Defaults to true when allowedEndpoints is absent."),
        allowedEndpoints: z
          .array(z.string().superRefine(refineWith(endpointProblem)))
          .min(1, { message: "the list is empty" })
          .optional()
          .describe(
            "TCP endpoints the agent may connect to, as host:port. host is an IPv4 address, a DNS name (resolved on the host when the agent starts) or localhost / 127.0.0.1 (the host machine's loopback). Everything else is refused.",
          ),
      })
      .optional()
      .describe("Egress. Default deny: only the listed TCP endpoints are reachable."),
    env: z
      .strictObject({
        allow: z
          .array(envName)
          .optional()
          .describe("Names of variables that may pass from the caller's environment (or runAgent's env) into the agent."),
        set: z.record(envName, z.string()).optional().describe("Fixed values set in the agent's environment."),
      })
      .optional()
      .describe("Environment. Nothing from the host environment reaches the agent unless listed here."),
    packages: z
      .array(z.string().superRefine(refineWith(packageProblem)))
      .optional()
      .describe("npm packages the agent imports, as name@version. Installed when the image is built, never at run time."),
    timeoutSeconds: z
      .number()
      .int()
      .positive()
      .max(7 * 24 * 3600)
      .optional()
      .describe(`Wall-clock limit. At the limit the agent gets SIGTERM, then SIGKILL after a short grace. Default ${DEFAULTS.timeoutSeconds}.`),
    resources: z
      .strictObject({
        memory: z
          .union([z.string(), z.number().int().positive()])
          .superRefine((v, ctx) => refineWith(() => memoryProblem(v))(String(v), ctx))
          .optional()
          .describe(`Memory limit (no swap), e.g. "512m", "2g". Default "${DEFAULTS.memory}".`),
        cpus: z.number().positive().max(256).optional().describe(`CPU limit in cores, e.g. 0.5. Default ${DEFAULTS.cpus}.`),
        pids: z.number().int().min(16).max(1_000_000).optional().describe(`Maximum number of processes and threads. Default ${DEFAULTS.pids}.`),
        output: z
          .union([z.string(), z.number().int().positive()])
          .superRefine((v, ctx) => refineWith(() => outputProblem(v))(String(v), ctx))
          .optional()
          .describe(`Most the host may spend on what the agent writes to /output (disk blocks of files, folders and links together): no single file can grow past it, and the run fails when everything together passes it. Default "${DEFAULTS.output}".`),
        outputFiles: z
          .number()
          .int()
          .min(1)
          .max(10_000_000)
          .optional()
          .describe(`Most entries (files, folders, links) the agent may create in /output; the run fails past it. Default ${DEFAULTS.outputFiles}.`),
      })
      .optional()
      .describe("Limits for the agent's container."),
    workspace: z
      .strictObject({
        include: z
          .array(z.string().min(1).refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), { message: "must be a path inside the working directory" }))
          .optional()
          .describe("Files in the working directory that look like secrets (.env, *.pem, .npmrc, ...) but may be mounted anyway, as paths relative to it or file names (* matches within a name)."),
      })
      .optional()
      .describe("The working directory mounted read-only at /workspace (when a run asks for one). Secret-looking files are kept out unless listed here."),
  })
  .superRefine((p, ctx) => {
    if (p.network?.disabled === true && p.network.allowedEndpoints?.length) {
      ctx.addIssue({
        code: "custom",
        path: ["network", "disabled"],
        message: `is true but allowedEndpoints lists ${p.network.allowedEndpoints.length} endpoint(s)`,
        params: { fix: "remove disabled: true to allow the listed endpoints, or remove allowedEndpoints" },
      });
    }
    if (p.network?.disabled === false && !p.network.allowedEndpoints) {
      ctx.addIssue({
        code: "custom",
        path: ["network"],
        message: "disabled is false but no allowedEndpoints are listed, so nothing would be reachable",
        params: { fix: "list the endpoints under network.allowedEndpoints, or set disabled: true" },
      });
    }
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

/** What a policy file contains, as written (optional fields may be absent). */
export type PolicyInput = z.input<typeof policySchema>;

/** Draft-07 JSON Schema for editors (yaml-language-server) and other tools. */
export function policyJsonSchema(): Record<string, unknown> {
  return draft07(policySchema, "https://airlock.dev/schemas/policy.schema.json", "airlock policy");
}

/** A zod schema as draft-07 JSON Schema, describing what a file may contain (input, not output). */
export function draft07(schema: z.ZodType, id: string, title: string): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: "draft-7", io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    $id: id,
    title,
    ...Object.fromEntries(Object.entries(json).filter(([k]) => k !== "$schema")),
  };
}
