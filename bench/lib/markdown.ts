/** What every part of the report writes with: numbers, tables, and the rows of the targets table. */

export const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');

/** One row of the targets table. */
export interface Target {
  name: string;
  target: string;
  measured: string;
  met: boolean | undefined;
  margin: string;
}

export function table(head: string[], rows: (string | number)[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((h, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** A verdict within 10 % of its limit can flip from run to run on this shared machine. */
export function close(ratio: number): string {
  return Math.abs(ratio - 1) < 0.1 ? ' — within run-to-run noise of the limit' : '';
}
