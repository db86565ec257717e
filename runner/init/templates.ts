/**
 * `airlock init`: a working starting point written into the user's project, from the examples the
 * package ships. A template is an example folder with a run file (its agents, and the policies it
 * names copied beside them), or `hello` (one agent and its policy). Paths are rewritten so that the
 * folder stands on its own: policies next to the run file, `$schema` lines pointing at the schemas
 * of the installed package. Nothing the user has is overwritten unless asked.
 */
import { access, copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { RunOptionsError } from "../errors.js";
import { packagePath } from "../paths.js";

export interface Template {
  name: string;
  /** Folder in the package it is made from. */
  source: string;
  /** What it shows, from the run file's comment. */
  description: string;
  /** The command that runs it, relative to the folder it was written to. */
  command: (dir: string) => string;
}

export interface InitResult {
  template: Template;
  dir: string;
  /** Files written, relative to the current folder. */
  files: string[];
  /** What to run next. */
  next: string;
}

const slash = (p: string) => p.split(sep).join("/");

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The first comment lines after the $schema line: what the example shows. */
function describe(text: string): string {
  const lines = text.split("\n").filter((l) => l.startsWith("#") && !l.includes("$schema") && !/^#\s+npx /.test(l));
  return lines
    .map((l) => l.replace(/^#\s?/, ""))
    .join(" ")
    .replace(/\s+/g, " ")
    .replace(/^Example \d+( in Python)?: /, "")
    .trim();
}

/** At most `n` characters, cut at a word. */
function clip(text: string, n = 100): string {
  if (text.length <= n) return text;
  return `${text.slice(0, text.lastIndexOf(" ", n - 1))}…`;
}

/** Every template the installed package offers. */
export async function listTemplates(): Promise<Template[]> {
  const examples = packagePath("examples");
  const found: Template[] = [];
  const hello = join(examples, "hello");
  if (await exists(join(hello, "agent.ts")))
    found.push({
      name: "hello",
      source: hello,
      description: "one agent that says hello and may reach the local Redis, nothing else",
      command: (d) => `npx airlock run ${d}/agent.ts --policy ${d}/policy.yaml --output out/hello`,
    });
  for (const [prefix, at] of [
    ["", examples],
    ["python-", join(examples, "python")],
  ] as const) {
    // A template folder the package does not ship lists no templates.
    for (const entry of (await readdir(at, { withFileTypes: true }).catch(() => [])).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const run = join(at, entry.name, "run.yaml");
      if (!entry.isDirectory() || !(await exists(run))) continue;
      found.push({
        name: `${prefix}${entry.name}`,
        source: join(at, entry.name),
        description: clip(describe(await readFile(run, "utf8"))),
        command: (d) => `npx airlock up ${d}/run.yaml`,
      });
    }
  }
  return found;
}

export async function initTemplate(name: string, options: { dir?: string; force?: boolean } = {}): Promise<InitResult> {
  const templates = await listTemplates();
  const template = templates.find((t) => t.name === name);
  if (!template)
    throw new RunOptionsError(
      `there is no template "${name}"`,
      `use one of: ${templates.map((t) => t.name).join(", ")} (npx airlock init --list)`,
    );
  const dir = resolve(options.dir ?? name);
  const planned = await plan(template, dir);
  if (!options.force) {
    const taken = [];
    for (const file of planned.keys()) if (await exists(file)) taken.push(slash(relative(process.cwd(), file)));
    if (taken.length)
      throw new RunOptionsError(
        `${taken.join(", ")} already exist${taken.length === 1 ? "s" : ""}: nothing was written`,
        `choose another folder (npx airlock init ${name} --dir <folder>), or --force to replace ${taken.length === 1 ? "it" : "them"}`,
      );
  }
  for (const [target, content] of planned) {
    await mkdir(dirname(target), { recursive: true });
    if (typeof content === "string") await writeFile(target, content);
    else await copyFile(content.copy, target);
  }
  const shown = slash(relative(process.cwd(), dir)) || ".";
  return {
    template,
    dir,
    files: [...planned.keys()].map((f) => slash(relative(process.cwd(), f))),
    next: template.command(shown),
  };
}

/** What goes where: target path → text (rewritten) or a file to copy as it is. */
async function plan(template: Template, dir: string): Promise<Map<string, string | { copy: string }>> {
  const out = new Map<string, string | { copy: string }>();
  const schemaLine = (text: string, target: string) =>
    text.replace(
      /(\$schema=)(\S+)/,
      (_, key: string, ref: string) =>
        `${key}${slash(relative(dirname(target), packagePath("policies", basename(ref))))}`,
    );
  if (template.name === "hello") {
    const policy = join(dir, "policy.yaml");
    out.set(join(dir, "agent.ts"), { copy: join(template.source, "agent.ts") });
    out.set(policy, schemaLine(await readFile(packagePath("policies", "hello.yaml"), "utf8"), policy));
    return out;
  }
  const runText = await readFile(join(template.source, "run.yaml"), "utf8");
  let run = runText;
  // Policies the run file names outside its folder come along, beside it.
  for (const m of runText.matchAll(/^(\s*policy:\s*)(\S+)\s*$/gm)) {
    const ref = m[2]!;
    const from = resolve(template.source, ref);
    if (dirname(from) === template.source) continue;
    const target = join(dir, basename(from));
    out.set(target, schemaLine(await readFile(from, "utf8"), target));
    run = run.replace(m[0], `${m[1]}${basename(from)}`);
  }
  for (const entry of await readdir(template.source, { withFileTypes: true })) {
    // Other run files of the example (variants mixing languages) name files outside it.
    if (!entry.isFile() || entry.name.endsWith(".run.yaml")) continue;
    const from = join(template.source, entry.name);
    const target = join(dir, entry.name);
    if (entry.name === "run.yaml")
      out.set(
        target,
        schemaLine(run.replace(/^(#\s+npx airlock up )\S+/m, `$1${slash(relative(process.cwd(), target))}`), target),
      );
    else if (entry.name.endsWith(".yaml")) out.set(target, schemaLine(await readFile(from, "utf8"), target));
    else out.set(target, { copy: from });
  }
  return out;
}
