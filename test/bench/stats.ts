/** Summary statistics for benchmark figures: median with min and max of several runs. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(values: number[]): Summary {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, runs: 0 };
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, runs: v.length };
}

/** `12.3 (11.9–13.0)`: the median with the range of the runs; one run prints just the value. */
export function formatSummary(s: Summary, digits = 1): string {
  if (!s.runs) return 'n/a';
  const f = (x: number) => x.toFixed(digits);
  return s.runs === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

/** Ratio of two medians, `1.23×`; below 1 means the first is smaller. */
export function ratio(a: Summary, b: Summary): string {
  if (!a.runs || !b.runs || !(b.median > 0)) return 'n/a';
  return `${(a.median / b.median).toFixed(2)}×`;
}
