/**
 * The runner's layout, checked: docs/ARCHITECTURE.md lists its folders from lower to higher, and a
 * folder may use only folders below it (or itself). This reads every import (static, dynamic,
 * re-exports, and `import type`: a type names what it depends on as much as a value does) and fails
 * on an arrow that points up; and every import that loads code at run time, failing on any cycle
 * between files (a class and the type of its owner may name each other: that loads nothing).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../../runner");

/** Lower to higher. A folder's subfolders belong to it unless listed themselves. */
const LAYERS: string[][] = [
  // The endpoint syntax ("host:port") is the policy's, and broker kinds parse it too.
  ["errors.ts", "paths.ts", "util", "policy/endpoint.ts"],
  ["settings.ts", "labels.ts"],
  // The Docker Engine API: the Docker backend's, and what airlock's images are built with (on either backend).
  ["backends/docker/engine"],
  ["images"],
  ["bus"],
  // The language names are what a policy's runtime field may say; the languages themselves read policies.
  ["languages/names.ts"],
  ["policy"],
  ["languages"],
  ["gate"],
  ["run"],
  // The seam, then what implements it, then the one place that knows them all.
  ["backends/backend.ts"],
  ["backends/docker", "backends/kubernetes"],
  ["backends/registry.ts"],
  ["runner.ts"],
  ["group", "init"],
  ["learn"],
  ["sdk"],
  ["cli", "index.ts", "internal.ts"],
];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Relative imports; with `values`, only those that load code: not `import type`, not an import whose every name is a type. */
function imports(file: string, values: boolean): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  // One statement at a time: the clause stops at the statement's end (every statement here ends with ";").
  const statement = /^(import|export)\s+([^;]*?)\s+from\s+["'](\.[^"']+)["']/gm;
  for (const m of text.matchAll(statement)) {
    const clause = m[2]!.trim();
    if (values && clause.startsWith("type ")) continue;
    const named = /^\{([\s\S]*)\}$/.exec(clause);
    if (
      values &&
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
const graph = new Map(files(ROOT).map((f) => [f, imports(f, true).filter((t) => t.startsWith(ROOT))]));
const uses = new Map(files(ROOT).map((f) => [f, imports(f, false).filter((t) => t.startsWith(ROOT))]));

describe("the runner's layout (docs/ARCHITECTURE.md)", () => {
  it("places every file of runner/ in a listed folder", () => {
    expect(
      [...graph.keys()].map((f) => relative(ROOT, f)).filter((f) => layerOf(unitOf(resolve(ROOT, f))!) < 0),
    ).toEqual([]);
  });

  it("has no import, of code or of types, that points from a lower folder up to a higher one", () => {
    const up: string[] = [];
    for (const [file, targets] of uses) {
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
    // A type-only import is seen by the arrow check, not by the cycle check.
    const run = join(ROOT, "backends", "docker", "docker-run.ts");
    expect(uses.get(run)).toContain(join(ROOT, "backends", "docker", "docker-backend.ts"));
    expect(graph.get(run)).not.toContain(join(ROOT, "backends", "docker", "docker-backend.ts"));
  });
});
