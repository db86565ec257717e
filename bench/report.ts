/**
 * The bench's table: one row per figure, airlock beside its baseline measured in the same run, the
 * ratio of their medians checked against the row's target, and the spread of the paired ratios.
 */
import { fmt, summarize } from "./stats.js";

export interface Row {
  section: string;
  metric: string;
  airlock: string;
  baseline: string;
  ratio: number;
  /** Each repetition's airlock figure over the baseline measured right next to it. */
  paired: string;
  /** On the ratio of the medians, or (`absolute`) on airlock's own figure (`of`: its median, or its p99). */
  target?: { op: "<=" | ">=" | "<"; value: number; absolute?: { of: "median" | "p99"; unit: string; actual: number } };
}
export const rows: Row[] = [];

/**
 * A row: both sides' min / median / max, the ratio of their medians (what the target is checked
 * against), and the spread of the paired ratios (repetition i of airlock over repetition i of the
 * baseline, measured back to back), which shows how much of a difference is the machine's noise.
 */
/** A row of one figure each (a percentile), with the paired column left empty. */
export function addFigureRow(
  section: string,
  metric: string,
  a: number,
  b: number,
  unit: string,
  target?: Row["target"],
) {
  rows.push({
    section,
    metric,
    airlock: `${a.toFixed(0)} ${unit}`,
    baseline: `${b.toFixed(0)} ${unit}`,
    ratio: a / b,
    paired: "",
    ...(target ? { target } : {}),
  });
}

export function addRow(
  section: string,
  metric: string,
  a: number[],
  b: number[],
  unit: string,
  target?: Row["target"],
  digits = 0,
) {
  const sa = summarize(a),
    sb = summarize(b);
  const paired = summarize(a.map((v, i) => v / b[i]!));
  const f = (v: number) => `${v.toFixed(2)}×`;
  rows.push({
    section,
    metric,
    airlock: fmt(sa, unit, digits),
    baseline: fmt(sb, unit, digits),
    ratio: sa.median / sb.median,
    paired: `${f(paired.min)} / ${f(paired.median)} / ${f(paired.max)}`,
    ...(target ? { target } : {}),
  });
}

export function verdict(r: Row): string {
  if (!r.target) return "";
  const t = r.target;
  const v = t.absolute ? t.absolute.actual : r.ratio;
  const ok = t.op === "<=" ? v <= t.value : t.op === "<" ? v < t.value : v >= t.value;
  return `${ok ? "✔" : "✖"} target ${t.absolute ? `${t.absolute.of} ` : ""}${t.op} ${t.value}${t.absolute ? ` ${t.absolute.unit}` : "×"}`;
}

export function table(markdown: boolean): string {
  const header = [
    "",
    "metric",
    "airlock (min / median / max)",
    "baseline (min / median / max)",
    "ratio",
    "target",
    "paired ratios (min / median / max)",
  ];
  const body = rows.map((r) => [
    r.section,
    r.metric,
    r.airlock,
    r.baseline,
    `${r.ratio.toFixed(2)}×`,
    verdict(r),
    r.paired,
  ]);
  if (markdown)
    return [
      `| ${header.join(" | ")} |`,
      `|${header.map(() => "---").join("|")}|`,
      ...body.map((b) => `| ${b.join(" | ")} |`),
    ].join("\n");
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [header, ...body].map((cells) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n");
}
