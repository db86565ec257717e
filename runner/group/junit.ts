/**
 * JUnit XML for CI systems: one testsuite per run, one testcase per agent. The format is small and
 * stable, so it is written directly rather than through a library.
 */
import { describeRefusal } from "../run/refusals.js";
import type { AgentResult } from "../run/result.js";
import type { GroupResult } from "./run-agents.js";

const MAX_LOG = 64 * 1024;

function xmlEscape(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function tail(text: string): string {
  return text.length > MAX_LOG ? `[… ${text.length - MAX_LOG} earlier characters]\n${text.slice(-MAX_LOG)}` : text;
}

/** The agent's last lines (stderr, else stdout), for a failure's body. */
export function lastLines(r: AgentResult, n = 10): string[] {
  const text = (r.stderr.trim() ? r.stderr : r.stdout).trimEnd();
  if (!text) return [];
  return [
    "last lines:",
    ...text
      .split("\n")
      .slice(-n)
      .map((l) => `  ${l.slice(0, 500)}`),
  ];
}

function testcase(run: string, r: AgentResult): string {
  const seconds = (r.durationMs / 1000).toFixed(3);
  const open = `    <testcase classname="${xmlEscape(run)}" name="${xmlEscape(r.name)}" time="${seconds}">`;
  const detail = `status ${r.status}${r.exitCode === null ? "" : `, exit code ${r.exitCode}`}${r.error ? `: ${r.error}` : ""}`;
  // The body says why, with the agent's last lines (CI systems show it where they show the failure).
  const body = xmlEscape([detail, ...lastLines(r)].join("\n"));
  let verdict = "";
  if (r.status === "skipped") verdict = `\n      <skipped message="${xmlEscape(detail)}"/>`;
  else if (r.status === "error")
    verdict = `\n      <error message="${xmlEscape(detail)}" type="${xmlEscape(r.errorCode ?? "error")}">${body}</error>`;
  else if (r.status !== "succeeded")
    verdict = `\n      <failure message="${xmlEscape(detail)}" type="${r.status}">${body}</failure>`;
  // What was refused, one property each (CI systems list a test case's properties beside it).
  const refused = (r.refusals ?? []).map(
    (d) =>
      `\n        <property name="airlock.refused" value="${xmlEscape(`${describeRefusal(d)} ×${d.count}: ${d.never ? "" : "fix: "}${d.fix}`)}"/>`,
  );
  const properties = refused.length ? `\n      <properties>${refused.join("")}\n      </properties>` : "";
  const out = r.stdout ? `\n      <system-out>${xmlEscape(tail(r.stdout))}</system-out>` : "";
  const err = r.stderr ? `\n      <system-err>${xmlEscape(tail(r.stderr))}</system-err>` : "";
  return `${open}${properties}${verdict}${out}${err}\n    </testcase>`;
}

export function junitXml(group: GroupResult): string {
  const count = (pred: (r: AgentResult) => boolean) => group.results.filter(pred).length;
  const failures = count((r) => !["succeeded", "error", "skipped"].includes(r.status));
  const errors = count((r) => r.status === "error");
  const skipped = count((r) => r.status === "skipped");
  const time = (group.durationMs / 1000).toFixed(3);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="airlock" tests="${group.results.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time}">`,
    `  <testsuite name="${xmlEscape(group.name)}" tests="${group.results.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time}">`,
    ...group.results.map((r) => testcase(group.name, r)),
    "  </testsuite>",
    "</testsuites>",
    "",
  ].join("\n");
}
