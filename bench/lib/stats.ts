/** Small statistics helpers: every table reports the median and the spread (min–max) of several runs. */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p99: number;
}

export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  // Nearest rank: p99 of 100 values is the 99th, of 10 values the 10th.
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(values: number[]): Summary {
  const s = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return { n: s.length, median: median(s), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, p99: quantile(s, 0.99) };
}

/** "123 ms (110–140)" style cell. */
export function cell(sum: Summary, unit: string, digits = 0): string {
  if (!sum.n) return 'n/a';
  const f = (v: number) => v.toFixed(digits);
  return sum.n === 1 ? `${f(sum.median)} ${unit}` : `${f(sum.median)} ${unit} (${f(sum.min)}–${f(sum.max)})`;
}

/** A copy in random order (Fisher–Yates): each round runs the tools in a new order. */
export function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
