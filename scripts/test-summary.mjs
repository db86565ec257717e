// The closing lines of `npm test`: the counts CI systems read, then each failed test with the
// start of its message. The suites print their failures earlier, but a CI log often shows only
// its end (the kubernetes suite runs after them), so what failed and why is said again last.
import { existsSync, readFileSync } from "node:fs";
import { relative } from "node:path";

const MAX_FAILURES = 20;
const LINES_EACH = 8;
const LINE_CHARS = 300;

const reports = [".airlock/vitest.json", ".airlock/vitest-kubernetes.json"]
  .filter((f) => existsSync(f))
  .map((f) => ({ file: f, report: JSON.parse(readFileSync(f, "utf8")) }));
const sum = (key) => reports.reduce((n, { report }) => n + (report[key] || 0), 0);
console.log(
  `tests: ${sum("numPassedTests")} passed, ${sum("numFailedTests")} failed, ${sum("numPendingTests") + sum("numTodoTests")} skipped`,
);

const plain = (text) => String(text).replace(/\x1b\[[0-9;]*m/g, "");
const excerpt = (message) =>
  plain(message)
    .split("\n")
    .filter((line) => line.trim() && !/^\s+at /.test(line))
    .slice(0, LINES_EACH)
    .map((line) => `    ${line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS)}…` : line}`);

const failures = [];
for (const { file, report } of reports) {
  const suite = file.includes("kubernetes") ? "kubernetes" : "unit/integration";
  for (const result of report.testResults ?? []) {
    const where = relative(process.cwd(), result.name);
    const failed = (result.assertionResults ?? []).filter((a) => a.status === "failed");
    for (const a of failed) failures.push([`${suite}: ${where} > ${a.fullName}`, a.failureMessages?.[0] ?? ""]);
    // A file that failed as a whole (an error outside any test) has no failed test to name.
    if (!failed.length && result.status === "failed") failures.push([`${suite}: ${where}`, result.message ?? ""]);
  }
}
if (failures.length) {
  console.log(`\nwhat failed${failures.length > MAX_FAILURES ? ` (the first ${MAX_FAILURES} of ${failures.length})` : ""}:`);
  for (const [name, message] of failures.slice(0, MAX_FAILURES)) console.log([`  ✖ ${name}`, ...excerpt(message)].join("\n"));
}
