/**
 * The learnt policy as YAML: the given file, comments and all, with each bus list replaced by what
 * the agent was seen to need — one comment per line saying what it was for — and a diff against
 * the given file, so a reviewer sees exactly what changed.
 */
import { parseDocument, type Scalar, YAMLMap, YAMLSeq } from "yaml";
import { describeRefusal } from "../run/refusals.js";
import type { LearnResult } from "./learn.js";

export function learnedYaml(given: string, learnt: LearnResult, about: { agent: string; policyFile: string }): string {
  const doc = parseDocument(given);
  const bus = doc.get("bus");
  if (bus instanceof YAMLMap)
    for (const item of bus.items) {
      const kind = String((item.key as Scalar).value);
      const grant = learnt.policy.bus?.[kind as keyof NonNullable<typeof learnt.policy.bus>] as unknown as
        | Record<string, unknown>
        | undefined;
      // The section's flags (requireRights) stay as written.
      if (!grant || typeof grant !== "object") continue;
      for (const root of ["keys", "publish", "subscribe", "queues", "exchanges", "topics", "groups", "reply"]) {
        const path = ["bus", kind, root];
        if (!(root in grant)) {
          // Kafka's topics.create stays when the file has it.
          if (doc.hasIn(path) && !(root === "topics" && doc.hasIn([...path, "create"]))) doc.deleteIn(path);
          continue;
        }
        if (root === "reply") {
          doc.setIn(path, true);
          continue;
        }
        const value = grant[root];
        const lists = Array.isArray(value) ? [[root]] : Object.keys(value as object).map((k) => [root, k]);
        if (!Array.isArray(value) && doc.hasIn(path))
          for (const k of Object.keys((doc.getIn(path) as YAMLMap).toJSON() as object))
            if (!(k in (value as object))) doc.deleteIn([...path, k]);
        for (const sub of lists) {
          const values = (Array.isArray(value) ? value : (value as Record<string, unknown>)[sub[1]!]) as unknown;
          if (!Array.isArray(values)) {
            doc.setIn(["bus", kind, ...sub], values);
            continue;
          }
          const seq = new YAMLSeq();
          for (const v of values as string[]) {
            const node = doc.createNode(v) as Scalar;
            const from = learnt.learnt.find(
              (l) => l.path[1] === kind && l.path.slice(2).join(".") === sub.join(".") && l.value === v,
            );
            if (from) node.comment = ` learnt: ${describeRefusal(from.from)}`;
            seq.items.push(node);
          }
          doc.setIn(["bus", kind, ...sub], seq);
        }
      }
    }
  const runs = learnt.rounds;
  doc.commentBefore = [
    ` Learnt by \`airlock learn\` from ${runs} run${runs === 1 ? "" : "s"} of ${about.agent} under ${about.policyFile}:`,
    " the bus rights it was seen to need, named exactly ({run} and {agent} where the run's names had them).",
    " The network is the given policy's: learning never widens it.",
    ...(doc.commentBefore ? ["", doc.commentBefore] : []),
  ].join("\n");
  // Long lines stay as the file wrote them.
  return doc.toString({ lineWidth: 0 });
}

/** A line diff (- given, + learnt, two lines of context), for the terminal. */
export function lineDiff(a: string, b: string): string[] {
  const x = a.split("\n");
  const y = b.split("\n");
  // Longest common subsequence, from the end.
  const n = x.length;
  const m = y.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: [" " | "-" | "+", string][] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) ops.push([" ", x[i++]!]), j++;
    else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) ops.push(["+", y[j++]!]);
    else ops.push(["-", x[i++]!]);
  }
  const near = (k: number) => ops.slice(Math.max(0, k - 2), k + 3).some(([op]) => op !== " ");
  return ops.filter((_, k) => near(k)).map(([op, line]) => `${op} ${line}`);
}
