/**
 * A reader of the monitoring-plugin output convention (Nagios, Icinga,
 * NRPE): the first line is "TEXT | PERFDATA", perfdata items separated by
 * spaces, each 'label'=value[UOM];[warn];[crit];[min];[max], thresholds as
 * ranges ([@][start:][end], "~" for minus infinity). Strict, so that a test
 * fails on anything a plugin parser would reject or misread.
 */
export interface PerfItem {
  label: string;
  value: number;
  uom: string;
  warn: string;
  crit: string;
  min: string;
  max: string;
}

const UOM = /^(s|ms|us|%|B|KB|MB|GB|TB|c|)$/;
const NUMBER = /^-?\d+(\.\d+)?$/;
const RANGE = /^(@?(~|-?\d+(\.\d+)?)?:?(-?\d+(\.\d+)?)?)$/;

export function parsePluginLine(line: string): { text: string; perf: PerfItem[] } {
  const bar = line.indexOf('|');
  if (bar < 0) return { text: line, perf: [] };
  const text = line.slice(0, bar).trimEnd();
  if (line.indexOf('|', bar + 1) >= 0) throw new Error(`more than one "|" in ${JSON.stringify(line)}`);
  const items = line
    .slice(bar + 1)
    .trim()
    .split(/ +/);
  const perf = items.map((item) => {
    const m = /^('[^'=]+'|[^'= ]+)=([^;]+)(?:;([^;]*))?(?:;([^;]*))?(?:;([^;]*))?(?:;([^;]*))?$/.exec(item);
    if (!m) throw new Error(`not label=value[UOM];warn;crit;min;max: ${JSON.stringify(item)}`);
    const [, label, valueUom, warn = '', crit = '', min = '', max = ''] = m;
    const v = /^(-?\d+(?:\.\d+)?)(.*)$/.exec(valueUom!);
    if (!v || !UOM.test(v[2]!)) throw new Error(`bad value or unit of measure in ${JSON.stringify(item)}`);
    for (const t of [warn, crit])
      if (t && !RANGE.test(t)) throw new Error(`bad threshold ${JSON.stringify(t)} in ${item}`);
    for (const n of [min, max])
      if (n && !NUMBER.test(n)) throw new Error(`bad min/max ${JSON.stringify(n)} in ${item}`);
    return { label: label!.replace(/^'|'$/g, ''), value: Number(v[1]), uom: v[2]!, warn, crit, min, max };
  });
  return { text, perf };
}
