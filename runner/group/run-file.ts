/**
 * Run files: a group of agents (typically a producer/consumer pair) described in one YAML file,
 * with the order constraints pairs need. Validated with zod like policies, with the same located errors.
 *
 *   name: redis-pubsub
 *   agents:
 *     consumer:
 *       agent: consumer.ts
 *       policy: ../../policies/redis-pubsub-consumer.yaml
 *     producer:
 *       agent: producer.ts
 *       policy: ../../policies/redis-pubsub-producer.yaml
 *       waitFor: { consumer: ready }
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { parse as parseYaml } from "yaml";
import { PolicyError, type InputIssue } from "../errors.js";
import { locate, parseYamlFile, zodIssuesToInputIssues, type KeyHints } from "../policy/locate.js";
import { draft07 } from "../policy/schema.js";
import { LANGUAGE_NAMES, type LanguageName } from "../languages/names.js";
import { BACKEND_NAMES, type BackendName } from "../backends/backend.js";

export const WAIT_CONDITIONS = ["started", "ready", "succeeded", "exited"] as const;
export type WaitCondition = (typeof WAIT_CONDITIONS)[number];

// Agent names become part of topic and subject names: lower-case letters, digits, '-' and '_'. Checked
// in the run's superRefine (a record's key schema would only say "Invalid key in record", and hide
// every other error of that agent).
const AGENT_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;
const suggestedName = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 40) || "agent";

const agentEntry = z
  .strictObject({
    agent: z.string().min(1).optional().describe("The agent's .ts, .js or .py file, relative to the run file."),
    runtime: z
      .enum(LANGUAGE_NAMES)
      .optional()
      .describe(
        "The language the agent is written in: node or python. Default: the policy's runtime, else the file's extension.",
      ),
    command: z.array(z.string()).min(1).optional().describe("Instead of agent: a command to run in the container."),
    image: z
      .string()
      .optional()
      .describe("With command: the image to run it in (default: the airlock image of the runtime)."),
    policy: z.string().min(1).describe("The agent's policy file, relative to the run file."),
    workingDir: z
      .string()
      .optional()
      .describe(
        "Folder mounted read-only at /workspace (secret-looking files kept out), relative to the run file. Default: nothing is mounted.",
      ),
    output: z
      .string()
      .optional()
      .describe("Output folder, relative to the run's output folder. Default: the agent's name."),
    env: z
      .record(z.string(), z.string())
      .optional()
      .describe("Values for variables the agent's policy lists in env.allow."),
    typecheck: z
      .boolean()
      .optional()
      .describe(
        "Type-check a TypeScript agent with the project's own TypeScript before it starts (airlock up --typecheck does it for every agent).",
      ),
    waitFor: z
      .record(z.string(), z.enum(WAIT_CONDITIONS, { message: `a condition is one of: ${WAIT_CONDITIONS.join(", ")}` }))
      .optional()
      .describe(
        "Start this agent only when these agents reach a condition: started, ready (called ctx.ready()), succeeded, or exited.",
      ),
  })
  .superRefine((a, ctx) => {
    if (!a.agent === !a.command)
      ctx.addIssue({
        code: "custom",
        message: "give either agent or command",
        params: { fix: "agent: path/to/agent.ts, or command: [program, args...]" },
      });
    if (a.image && !a.command)
      ctx.addIssue({
        code: "custom",
        path: ["image"],
        message: "image goes with command",
        params: { fix: "remove image, or use command instead of agent" },
      });
  });

export const runFileSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { message: "use letters, digits, '.', '_' and '-'" })
      .describe("Name of the run; the default output folder is out/<name>."),
    description: z.string().optional(),
    backend: z
      .enum(BACKEND_NAMES)
      .optional()
      .describe(
        "Where the agents run: docker (default) or kubernetes (each a Pod; the cluster from KUBECONFIG). airlock up --backend overrides it.",
      ),
    agents: z
      .record(z.string(), agentEntry)
      .describe("The agents, by name. They start together unless waitFor says otherwise."),
  })
  // Names are checked even when an agent's entry has errors of its own (all of them are reported together).
  .superRefine(
    (run, ctx) => {
      const agents = (run as { agents?: unknown }).agents;
      if (!agents || typeof agents !== "object") return;
      for (const name of Object.keys(agents)) {
        if (!AGENT_NAME.test(name))
          ctx.addIssue({
            code: "custom",
            path: ["agents", name],
            message: `"${name}" is not an agent name: lower-case letters, digits, '-' and '_' (at most 40), starting with a letter or digit`,
            params: { fix: `rename it to "${suggestedName(name)}" (and in every waitFor that names it)` },
          });
      }
    },
    { when: () => true },
  )
  .superRefine((run, ctx) => {
    const names = Object.keys(run.agents);
    if (names.length === 0)
      ctx.addIssue({
        code: "custom",
        path: ["agents"],
        message: "lists no agents",
        params: { fix: "add at least one agent" },
      });
    for (const [name, entry] of Object.entries(run.agents)) {
      for (const dep of Object.keys(entry.waitFor ?? {})) {
        if (dep === name)
          ctx.addIssue({
            code: "custom",
            path: ["agents", name, "waitFor", dep],
            message: "an agent cannot wait for itself",
            params: { fix: "remove it" },
          });
        else if (!names.includes(dep))
          ctx.addIssue({
            code: "custom",
            path: ["agents", name, "waitFor", dep],
            message: `no agent named "${dep}" in this run`,
            params: { fix: `use one of: ${names.join(", ")}` },
          });
      }
    }
    const cycle = findCycle(
      Object.fromEntries(
        Object.entries(run.agents).map(([n, e]) => [
          n,
          Object.keys(e.waitFor ?? {}).filter((d) => names.includes(d) && d !== n),
        ]),
      ),
    );
    if (cycle)
      ctx.addIssue({
        code: "custom",
        path: ["agents", cycle[0]!, "waitFor"],
        message: `agents wait for each other in a cycle: ${cycle.join(" → ")}`,
        params: { fix: "remove one of the waitFor entries" },
      });
  })
  .describe("An airlock run file: agents started together, with order constraints.");

export type RunFileInput = z.input<typeof runFileSchema>;

function findCycle(graph: Record<string, string[]>): string[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === "done") return undefined;
    if (state.get(n) === "visiting") return [...path.slice(path.indexOf(n)), n];
    state.set(n, "visiting");
    path.push(n);
    for (const d of graph[n] ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(n, "done");
    return undefined;
  };
  for (const n of Object.keys(graph)) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

export interface GroupAgent {
  name: string;
  agent?: string;
  runtime?: LanguageName;
  command?: string[];
  image?: string;
  policy: string;
  workingDir?: string;
  output: string;
  env?: Record<string, string>;
  waitFor: Record<string, WaitCondition>;
  typecheck?: boolean;
}

export interface RunSpec {
  name: string;
  source: string;
  /** Where the agents run, when the run file says. */
  backend?: BackendName;
  agents: GroupAgent[];
}

const HINTS: KeyHints = {
  known: { "": ["name", "description", "backend", "agents"] },
  renamed: {
    language: "runtime",
    after: "waitFor",
    depends_on: "waitFor",
    dependsOn: "waitFor",
    wait_for: "waitFor",
    working_dir: "workingDir",
    output_dir: "output",
    outputDir: "output",
  },
};

export function runFileJsonSchema(): Record<string, unknown> {
  return draft07(runFileSchema, "https://airlock.dev/schemas/run.schema.json", "airlock run file");
}

export async function loadRunFile(file: string): Promise<RunSpec> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new PolicyError(file, [
      {
        file,
        field: "",
        message: "file not found",
        fix: "pass the path of a run file; npx airlock init writes one to start from (redis-pubsub/run.yaml)",
      },
    ]);
  }
  const parsed = parseYamlFile(text, file);
  if (parsed.issues.length) throw new PolicyError(file, parsed.issues);
  const result = runFileSchema.safeParse(parsed.value, { reportInput: true });
  if (!result.success) {
    const agentKeys = [
      "agent",
      "runtime",
      "command",
      "image",
      "policy",
      "workingDir",
      "output",
      "env",
      "waitFor",
      "typecheck",
    ];
    const known: Record<string, string[]> = { ...HINTS.known };
    for (const n of Object.keys((parsed.value as { agents?: object })?.agents ?? {})) known[`agents.${n}`] = agentKeys;
    throw new PolicyError(file, zodIssuesToInputIssues(parsed, result.error.issues, { ...HINTS, known }));
  }
  const base = dirname(path);
  const agents: GroupAgent[] = Object.entries(result.data.agents).map(([name, e]) => ({
    name,
    ...(e.agent ? { agent: resolve(base, e.agent) } : {}),
    ...(e.runtime ? { runtime: e.runtime } : {}),
    ...(e.command ? { command: e.command } : {}),
    ...(e.image ? { image: e.image } : {}),
    policy: resolve(base, e.policy),
    ...(e.workingDir !== undefined ? { workingDir: resolve(base, e.workingDir) } : {}),
    output: e.output ?? name,
    ...(e.env ? { env: e.env } : {}),
    waitFor: e.waitFor ?? {},
    ...(e.typecheck ? { typecheck: true } : {}),
  }));
  // Files that must exist, reported at the line that names them.
  const missing: InputIssue[] = [];
  for (const a of agents) {
    for (const [field, path] of [
      ["agent", a.agent],
      ["policy", a.policy],
      ["workingDir", a.workingDir],
    ] as const) {
      if (!path) continue;
      // A path that cannot be read is reported as missing, below.
      const info = await stat(path).catch(() => undefined);
      const wantDir = field === "workingDir";
      if (!info || (wantDir ? !info.isDirectory() : !info.isFile())) {
        missing.push({
          file,
          field: `agents.${a.name}.${field}`,
          ...locate(parsed, ["agents", a.name, field]),
          message: `${path} ${info ? (wantDir ? "is not a folder" : "is not a file") : "does not exist"}`,
          fix: "paths are relative to the run file's folder",
        });
      }
    }
  }
  if (missing.length) throw new PolicyError(file, missing);
  return {
    name: result.data.name,
    source: path,
    ...(result.data.backend ? { backend: result.data.backend } : {}),
    agents,
  };
}

/** Whether a YAML file is a run file (it has agents:) rather than a policy; false when it cannot be read or parsed. */
export async function isRunFile(file: string): Promise<boolean> {
  try {
    const value = parseYaml(await readFile(file, "utf8")) as unknown;
    return typeof value === "object" && value !== null && "agents" in value;
  } catch {
    return false;
  }
}
