/**
 * Section 10 of npm run bench: how long the CLI takes to answer when a command needs no engine
 * (`airlock --help`, `airlock validate`). Commands load what they need when they run, so these pay
 * for commander (and, for validate, the policy validator) only. The baseline is the least a
 * commander CLI can cost: node starting and importing commander, nothing else.
 */
import { execa } from "execa";
import { packagePath } from "../runner/paths.js";
import type { AddRow, RowTarget } from "./stats.js";

const CLI = packagePath("dist", "runner", "cli", "main.js");
const BASELINE = [
  "--input-type=module",
  "-e",
  `await import(${JSON.stringify(packagePath("node_modules", "commander", "esm.mjs"))});`,
];

async function timed(args: string[]): Promise<number> {
  const started = performance.now();
  await execa("node", args, { stdout: "ignore" });
  return performance.now() - started;
}

export async function cliSection(t: { addRow: AddRow; log: (...a: unknown[]) => void; reps: number }): Promise<void> {
  t.log("10. CLI start-up");
  const reps = Math.max(5, t.reps * 2);
  const rows: [string, string[], RowTarget][] = [
    ["airlock --help", [CLI, "--help"], { op: "<=", value: 1.5 }],
    [
      "airlock validate policies/hello.yaml",
      [CLI, "validate", packagePath("policies", "hello.yaml")],
      { op: "<=", value: 3 },
    ],
  ];
  for (const [metric, args, target] of rows) {
    const airlock: number[] = [];
    const baseline: number[] = [];
    for (let i = -1; i < reps; i++) {
      const a = await timed(args);
      const b = await timed(BASELINE);
      // The first round warms the file cache and is not counted.
      if (i < 0) continue;
      airlock.push(a);
      baseline.push(b);
    }
    t.addRow("10. CLI", `${metric} (baseline: node importing commander)`, airlock, baseline, "ms", target);
  }
}
