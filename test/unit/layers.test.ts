/**
 * The runner's layout, checked: docs/ARCHITECTURE.md lists its folders from lower to higher, and a
 * folder may load code only from folders below it (or from itself). This reads every import that
 * loads code at run time (static, dynamic, re-exports; `import type` loads nothing) and fails on an
 * arrow that points up, and on any cycle between files.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../../runner");

/** Lower to higher. A folder's subfolders belong to it unless listed themselves. */
const LAYERS: string[][] = [
  // The endpoint syntax ("host:port") is the policy's, and broker kinds parse it too.
  ["errors.ts", "paths.ts", "util", "policy/endpoint.ts"],
  ["settings.ts"],
  ["docker"],
  ["images"],
  ["bus"],
  ["languages"],
  ["policy"],
  ["gate"],
  ["run"],
  // The seam, then what implements it, then the one place that knows them all.
  ["backends/backend.ts"],
  ["backends/docker", "backends/kubernetes"],
  ["backends/registry.ts"],
  ["runner.ts"],
  ["group", "init"],
  ["cli", "index.ts", "internal.ts"],
];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Relative imports that load code: not `import type`, not an import whose every name is a type. */
function valueImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  // One statement at a time: the clause stops at the statement's end (every statement here ends with ";").
  const statement = /^(import|export)\s+([^;]*?)\s+from\s+["'](\.[^"']+)["']/gm;
  for (const m of text.matchAll(statement)) {
    const clause = m[2]!.trim();
    if (clause.startsWith("type ")) continue;
    const named = /^\{([\s\S]*)\}$/.exec(clause);
    if (
      named &&
      named[1]!
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
        .every((s) => s.startsWith("type "))
    )
      continue;
    found.push(m[3]!);
  }
  for (const m of text.matchAll(/import\(\s*["'](\.[^"']+)["']\s*\)/g)) found.push(m[1]!);
  return found.map((spec) => resolve(dirname(file), spec).replace(/\.js$/, ".ts"));
}

/** The layout entry a file belongs to (the longest listed path that contains it), or undefined outside runner/. */
function unitOf(file: string): string | undefined {
  const rel = relative(ROOT, file);
  if (rel.startsWith("..")) return undefined;
  const units = LAYERS.flat().filter((u) => rel === u || rel.startsWith(`${u}/`));
  return units.sort((a, b) => b.length - a.length)[0] ?? rel;
}

const layerOf = (unit: string) => LAYERS.findIndex((l) => l.includes(unit));
const graph = new Map(files(ROOT).map((f) => [f, valueImports(f).filter((t) => t.startsWith(ROOT))]));

describe("the runner's layout (docs/ARCHITECTURE.md)", () => {
  it("places every file of runner/ in a listed folder", () => {
    expect(
      [...graph.keys()].map((f) => relative(ROOT, f)).filter((f) => layerOf(unitOf(resolve(ROOT, f))!) < 0),
    ).toEqual([]);
  });

  it("has no import that points from a lower folder up to a higher one", () => {
    const up: string[] = [];
    for (const [file, targets] of graph) {
      const from = unitOf(file)!;
      for (const target of targets) {
        const to = unitOf(target)!;
        if (from !== to && layerOf(to) >= layerOf(from))
          up.push(`${relative(ROOT, file)} → ${relative(ROOT, target)} (${from} → ${to})`);
      }
    }
    expect(up).toEqual([]);
  });

  it("has no cycle of imports between files", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(ROOT, f)).join(" → "));
        return;
      }
      state.set(file, "open");
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, "done");
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it("sees the imports it checks (a file that loads others is read as doing so)", () => {
    const runner = graph.get(join(ROOT, "runner.ts"))!;
    expect(runner).toContain(join(ROOT, "run", "run-agent.ts"));
    expect(graph.get(join(ROOT, "backends", "registry.ts"))).toContain(
      join(ROOT, "backends", "kubernetes", "index.ts"),
    );
  });
});
