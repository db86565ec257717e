/**
 * No error is dropped without a word: every `.catch(() => …)` in the runner that ignores what it
 * caught (returns nothing, undefined, or a fixed value) says why losing it is right, in a comment on
 * its line or the line above (the promise is awaited elsewhere, a sweep removes what a failed removal
 * left, a missing file is the answer, ...).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../../runner");
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );

/** A handler that takes nothing from the error: `() => {}`, `() => undefined`, `() => 0`, `() => []`, ... */
const IGNORES = /\.catch\(\s*\(\)\s*=>\s*(\{\s*\}|undefined|null|false|true|0|""|\[\]|\(\{[^)]*\}\))\s*\)/;

describe("errors the runner ignores", () => {
  it("each says why, beside it", () => {
    const silent: string[] = [];
    for (const file of files(ROOT)) {
      const lines = readFileSync(file, "utf8").split("\n");
      lines.forEach((line, i) => {
        if (!IGNORES.test(line)) return;
        const said = line.includes("//") || /^\s*\/\/|\*\/\s*$|^\s*\*/.test(lines[i - 1] ?? "");
        if (!said) silent.push(`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(silent).toEqual([]);
  });

  it("finds the handlers it checks", () => {
    expect(IGNORES.test("p.catch(() => {})")).toBe(true);
    expect(IGNORES.test("stat(f).catch(() => undefined)")).toBe(true);
    expect(IGNORES.test("p.catch((err) => log(err))")).toBe(false);
  });
});
