/**
 * Turn validation issues into located, readable problems: file, line and column, the field,
 * and the fix. Shared by policy files and run files.
 */
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { z } from "zod";
import type { InputIssue } from "../errors.js";

export interface ParsedYaml {
  file: string;
  doc?: Document.Parsed;
  lines?: LineCounter;
  value: unknown;
  issues: InputIssue[];
}

export function parseYamlFile(text: string, file: string): ParsedYaml {
  if (text.trim() === "" || text.split("\n").every((l) => l.trim() === "" || l.trim().startsWith("#"))) {
    return {
      file,
      value: undefined,
      issues: [
        {
          file,
          field: "",
          line: 1,
          column: 1,
          message: "the file is empty",
          fix: "start from an example in policies/, e.g. policies/hello.yaml",
        },
      ],
    };
  }
  const lines = new LineCounter();
  // logLevel "error": the library prints nothing (yaml would otherwise emit process warnings).
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, logLevel: "error" });
  const issues: InputIssue[] = doc.errors.map((e) => {
    const pos = lines.linePos(e.pos[0]);
    return {
      file,
      field: "",
      line: pos.line,
      column: pos.col,
      message: `YAML syntax: ${firstLine(e.message)}`,
      fix: yamlFix(e.code),
    };
  });
  if (issues.length) return { file, doc, lines, value: undefined, issues };
  try {
    return { file, doc, lines, value: doc.toJS({ maxAliasCount: 50 }), issues };
  } catch (err) {
    // Unresolved aliases (*name without &name) and alias bombs are found while building the value.
    return {
      file,
      doc,
      lines,
      value: undefined,
      issues: [
        {
          file,
          field: "",
          line: 1,
          column: 1,
          message: `YAML: ${firstLine((err as Error).message)}`,
          fix: "policies need no anchors or aliases (&name, *name); write the values out",
        },
      ],
    };
  }
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

function yamlFix(code: string): string {
  switch (code) {
    case "DUPLICATE_KEY":
      return "remove one of the two entries";
    case "TAB_AS_INDENT":
      return "indent with spaces, not tabs";
    case "BAD_INDENT":
    case "MISSING_CHAR":
      return "check the indentation and the ':' after each key";
    default:
      return "check the YAML syntax near this position";
  }
}

export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** Line and column of the node at `path`; for a key, of the key itself. Falls back to the nearest parent. */
export function locate(
  parsed: ParsedYaml,
  path: readonly PropertyKey[],
  key?: string,
): { line?: number; column?: number } {
  if (!parsed.doc || !parsed.lines) return {};
  let node: unknown = parsed.doc.contents;
  let best: Node | undefined = node as Node;
  for (const step of [...path, ...(key === undefined ? [] : [key])]) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(step));
      if (!pair) break;
      if (step === key) {
        best = pair.key as Node;
        break;
      }
      node = pair.value;
    } else if (
      node &&
      typeof node === "object" &&
      "items" in node &&
      Array.isArray((node as { items: unknown[] }).items) &&
      typeof step === "number"
    ) {
      node = (node as { items: unknown[] }).items[step];
    } else break;
    if (node && typeof node === "object" && "range" in node) best = node as Node;
  }
  const offset = best?.range?.[0];
  if (offset === undefined) return {};
  const pos = parsed.lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}

export interface KeyHints {
  /** Known keys at each object path ("" for the top level). */
  known: Record<string, string[]>;
  /** Keys users bring from elsewhere, with where they belong. */
  renamed: Record<string, string>;
}

export function zodIssuesToInputIssues(
  parsed: ParsedYaml,
  zodIssues: z.core.$ZodIssue[],
  hints: KeyHints,
): InputIssue[] {
  const out: InputIssue[] = [];
  for (const issue of zodIssues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const parent = fieldPath(issue.path);
        const field = parent ? `${parent}.${key}` : key;
        out.push({
          file: parsed.file,
          field,
          ...locate(parsed, issue.path, key),
          ...unknownKeyText(key, parent, hints),
        });
      }
      continue;
    }
    const field = fieldPath(issue.path);
    const fix = (issue as { params?: { fix?: string } }).params?.fix ?? defaultFix(issue);
    out.push({ file: parsed.file, field, ...locate(parsed, issue.path), message: issueMessage(issue), fix });
  }
  return out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") {
    const expected = issue.expected;
    const input = (issue as { input?: unknown }).input;
    if (input === undefined) return `is required (${expected})`;
    return `must be ${article(expected)} ${expected}, not ${describe(input)}`;
  }
  if (issue.code === "too_small" && issue.origin !== "array" && issue.origin !== "string") {
    return `must be ${issue.inclusive ? "at least" : "more than"} ${String(issue.minimum)}`;
  }
  if (issue.code === "too_big" && issue.origin !== "array" && issue.origin !== "string") {
    return `must be ${issue.inclusive ? "at most" : "less than"} ${String(issue.maximum)}`;
  }
  // A field of several forms: the schema's own words for them, and what was found.
  const input = (issue as { input?: unknown }).input;
  if (issue.code === "invalid_union" && input !== undefined) return `${issue.message}, not ${describe(input)}`;
  return issue.message;
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? "an" : "a";
}

function describe(v: unknown): string {
  if (v === null) return "null (an empty value)";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the text "${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return `${typeof v} ${String(v)}`;
}

function defaultFix(issue: z.core.$ZodIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      if ((issue as { input?: unknown }).input === undefined) return "add this field";
      if (issue.expected === "array") return "write it as a YAML list, one '- item' per line";
      if (issue.expected === "number") return "write a number without quotes";
      if (issue.expected === "boolean") return "write true or false without quotes";
      if (issue.expected === "string") return "write it as text (quote it if it looks like a number)";
      return undefined;
    case "too_small":
      if (issue.origin === "array") return "list at least one item, or remove the field";
      return issue.inclusive
        ? `use a value of at least ${String(issue.minimum)}`
        : `use a value greater than ${String(issue.minimum)}`;
    case "too_big":
      return `use a value of at most ${String(issue.maximum)}`;
    default:
      return undefined;
  }
}

function unknownKeyText(key: string, parent: string, hints: KeyHints): { message: string; fix: string } {
  const renamed = hints.renamed[key];
  if (renamed) return { message: `unknown key "${key}"`, fix: `did you mean ${renamed}?` };
  const known = hints.known[parent] ?? [];
  const camel = key.replace(/[_-]([a-z])/g, (_, c: string) => c.toUpperCase());
  const close = known.find((k) => k === camel) ?? nearest(key, known);
  const at = parent ? ` under ${parent}` : "";
  if (close)
    return { message: `unknown key "${key}"${at}`, fix: `did you mean ${parent ? `${parent}.` : ""}${close}?` };
  return { message: `unknown key "${key}"${at}`, fix: `remove it; allowed keys${at}: ${known.join(", ")}` };
}

function nearest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
