/** Summaries of repeated measurements (min, median, max, percentiles) and the row type the bench sections add to the table. */
export interface Summary {
  min: number;
  median: number;
  max: number;
  n: number;
}

export function summarize(values: number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s[s.length - 1]!, n: s.length };
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export function fmt(s: Summary, unit: string, digits = 0): string {
  const f = (v: number) => v.toFixed(digits);
  return `${f(s.min)} / ${f(s.median)} / ${f(s.max)} ${unit}`;
}

/** A target a row's ratio is checked against. */
export interface RowTarget {
  op: "<=" | ">=" | "<";
  value: number;
}

/** One row of the table: airlock's figures beside the baseline's, measured in the same run. */
export type AddRow = (
  section: string,
  metric: string,
  airlock: number[],
  baseline: number[],
  unit: string,
  target?: RowTarget,
  digits?: number,
) => void;
