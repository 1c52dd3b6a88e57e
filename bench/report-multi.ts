/** The report's part on several certificates in one agent (bench/sections/multi.ts): its target and its section. */
import { close, fmt, table, type Target } from './lib/markdown.js';
import { cell, median, summarize } from './lib/stats.js';
import type { MultiDaemon, MultiResult, MultiRuns } from './sections/multi.js';

const med = (xs: number[]) => median(xs.filter(Number.isFinite));
const mib = (kb: number) => `${fmt(kb / 1024, 1)} MiB`;
const maxOf = (xs: number[]) => (xs.length ? Math.max(...xs) : NaN);

/** A check of every certificate, none due, against a check of one: ≤ 1.5×. */
export function multiTargets(m: MultiResult | undefined): Target[] {
  if (!m?.check.one.wallMs.length || !m.check.many.wallMs.length) return [];
  const one = med(m.check.one.wallMs);
  const many = med(m.check.many.wallMs);
  const q = many / one;
  return [
    {
      name: `Check of ${m.many} certificates, none due`,
      target: '≤ 1.5× a check of one (timer mode, whole process)',
      measured: `${fmt(q, 2)}× (${fmt(many)} ms vs ${fmt(one)} ms; CPU ${fmt(med(m.check.many.cpuMs))} vs ${fmt(med(m.check.one.cpuMs))} ms)`,
      met: q <= 1.5,
      margin:
        (q <= 1.5
          ? `${fmt((1 - q / 1.5) * 100)} % under`
          : `${fmt(q / 1.5, 2)}× over the target (${fmt(many - 1.5 * one)} ms too slow)`) + close(q / 1.5),
    },
  ];
}

export function renderMulti(m: MultiResult): string[] {
  const n = m.many;
  const s: string[] = [`## Several certificates in one agent: ${n} against 1`, ''];
  s.push(
    `Two agents enrolled with the same local step-ca: one with a single certificate, one with ${n} (\`certificates:\` list, one account, one lock, one state file per certificate). Each certificate is ECDSA P-256 for its own IP identifier (127.30.1.1, and 127.30.0.1–${n}; step-ca resolves no name but \`localhost\` here: it gives no address to \`*.localhost\`), with its own http-01 listener on that address and the CA's validation port. ${m.rounds} rounds; each runs, in a random order, as whole processes: \`cert-agent check\` of each agent (timer mode, every certificate live and none due: one pass that reads and decides every certificate and writes each state file), \`cert-agent renew --force\` of each (every certificate renewed in one pass: per certificate a new key, an ACME order, http-01, finalize, download, checks, install, one after another), and \`lego run\` with its account already there (one certificate for \`localhost\`, as in the one-shot section). Wall time from the parent's spawn to exit, CPU and peak RSS from GNU time. Then both daemons (\`cert-agent run\`) start side by side; once each has logged its first check of every certificate (\`renewal_not_due\`) and ${m.daemon?.settleSeconds ?? '?'} s have passed, VmRSS is read once a second for ${m.daemon?.windowSeconds ?? '?'} s and VmHWM at the end (the daemon's own memory; its passes run in child processes). Cells: median (min–max).`,
    '',
  );
  const row = (label: string, one: MultiRuns, many: MultiRuns, pick: 'wallMs' | 'cpuMs' | 'rssKb') => {
    const unit = pick === 'rssKb' ? 'MiB' : 'ms';
    const scale = (xs: number[]) => (pick === 'rssKb' ? xs.map((x) => x / 1024) : xs);
    const a = summarize(scale(one[pick]));
    const b = summarize(scale(many[pick]));
    return [
      label,
      cell(a, unit, pick === 'rssKb' ? 1 : 0),
      cell(b, unit, pick === 'rssKb' ? 1 : 0),
      `${fmt(b.median / a.median, 2)}×`,
    ];
  };
  const rows: (string | number)[][] = [
    row('`cert-agent check` (none due), wall', m.check.one, m.check.many, 'wallMs'),
    row('… CPU', m.check.one, m.check.many, 'cpuMs'),
    row('… peak RSS', m.check.one, m.check.many, 'rssKb'),
    row('`cert-agent renew --force` (all renewed in one pass), wall', m.renew.one, m.renew.many, 'wallMs'),
    row('… CPU', m.renew.one, m.renew.many, 'cpuMs'),
    row('… peak RSS', m.renew.one, m.renew.many, 'rssKb'),
  ];
  if (m.daemon) rows.push(...daemonRows(m.daemon.one, m.daemon.many));
  s.push(table(['', '1 certificate', `${n} certificates`, `${n} vs 1`], rows), '');
  s.push(...perCertificate(m), '');
  if (m.failures.length)
    s.push(
      'Failed runs (left out of the medians):',
      '',
      ...m.failures.slice(0, 8).map((f) => `- ${f}`),
      ...(m.failures.length > 8 ? [`- … ${m.failures.length - 8} more`] : []),
      '',
    );
  return s;
}

function daemonRows(one: MultiDaemon, many: MultiDaemon): (string | number)[][] {
  const r1 = maxOf(one.rssKb);
  const r10 = maxOf(many.rssKb);
  return [
    [
      '`cert-agent run`, idle after its first checks: VmRSS (max over the window)',
      mib(r1),
      mib(r10),
      `+${mib(r10 - r1)}`,
    ],
    ['… VmHWM (peak since start)', mib(one.hwmKb), mib(many.hwmKb), `+${mib(many.hwmKb - one.hwmKb)}`],
  ];
}

/** The added cost per extra certificate, in a check and in one pass of renewals (against one lego run per certificate). */
function perCertificate(m: MultiResult): string[] {
  const n = m.many;
  const t1 = med(m.renew.one.wallMs);
  const tn = med(m.renew.many.wallMs);
  const c1 = med(m.renew.one.cpuMs);
  const cn = med(m.renew.many.cpuMs);
  const extra = (tn - t1) / (n - 1);
  const extraCpu = (cn - c1) / (n - 1);
  const k1 = med(m.check.one.wallMs);
  const kn = med(m.check.many.wallMs);
  const kc1 = med(m.check.one.cpuMs);
  const kcn = med(m.check.many.cpuMs);
  const lines = [
    `**Per extra certificate in a check** (none due; medians, (t${n} − t1) / ${n - 1}): ${fmt((kn - k1) / (n - 1))} ms wall, ${fmt((kcn - kc1) / (n - 1))} ms CPU, on a check of one of ${fmt(k1)} ms wall, ${fmt(kc1)} ms CPU.`,
    '',
    `**Per extra certificate in one pass** (medians, (t${n} − t1) / ${n - 1}): **${fmt(extra)} ms** wall, ${fmt(extraCpu)} ms CPU. ${n} separate \`renew --force\` processes would take about ${n} × ${fmt(t1)} = ${fmt(n * t1)} ms; the one pass took ${fmt(tn)} ms (${fmt(tn / (n * t1), 2)}×).`,
  ];
  if (m.lego?.wallMs.length) {
    const l = med(m.lego.wallMs);
    const lc = med(m.lego.cpuMs);
    lines.push(
      '',
      `Against \`lego run\` per certificate (${m.lego.wallMs.length} runs in the same rounds: ${cell(summarize(m.lego.wallMs), 'ms')}, ${fmt(lc)} ms CPU): cert-agent's extra certificate / lego's run = **${fmt(extra / l, 2)}×** wall (CPU: ${fmt(extraCpu)} ms per extra certificate against ${fmt(lc)} ms per lego run; GNU time counts CPU in steps of 10 ms, too coarse for a ratio of lego's). lego pays its whole process per certificate; cert-agent pays Node's start-up and the bundle once per pass, and per extra certificate its key, order, validation, download, checks and atomic install.`,
    );
  } else lines.push('', '`lego` is not installed: no comparison per certificate.');
  return lines;
}
