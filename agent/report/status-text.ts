/**
 * The human rendering of a StatusReport: one screen, the verdict first, a
 * lifetime bar and relative times ("in 3h12m"). Colour and block characters
 * only on a terminal without NO_COLOR; otherwise plain ASCII that greps and
 * pastes into a ticket cleanly. Text in a report can come from outside (a
 * proxy's or the CA's answer quoted in an error): every control character is
 * replaced before it reaches a terminal or a script reading `--line`.
 */
import { overdueGraceMs, type AgentStatusReport, type CertificateReport, type StatusReport } from './status/report.js';

export interface RenderOptions {
  /** Terminal output: ANSI colour and a block-character bar. */
  color: boolean;
  now: Date;
}

const COLORS = { OK: '32', WARNING: '33', CRITICAL: '31', UNKNOWN: '35' } as const;

/** C0 (tab and line breaks aside), DEL and C1: what a terminal acts on. */
const CONTROL = new RegExp('[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]', 'g');

/** A copy of `value` whose every string is printable: tabs and line breaks as spaces, other control characters as "?". */
function printable<T>(value: T): T {
  if (typeof value === 'string') return value.replace(/[\t\r\n]/g, ' ').replace(CONTROL, '?') as T;
  if (Array.isArray(value)) return value.map((v: unknown) => printable(v)) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, printable(v)])) as T;
  return value;
}

export function renderStatus(report: StatusReport, opts: RenderOptions): string {
  const r = printable(report);
  const paint = (code: string, text: string) => (opts.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const lines: string[] = [];
  const out: Out = {
    row: (label, value) => lines.push(`  ${label.padEnd(14)} ${value}`),
    paint,
    bad: (text) => paint('31', text),
    now: opts.now,
    color: opts.color,
  };
  const perf = perfdata(r);
  const summary = `${r.problems.length ? ` - ${r.problems[0]}` : ''}${perf ? ` | ${perf}` : ''}`;
  lines.push(`cert-agent ${paint(COLORS[r.status], r.status)}${summary}`);
  for (const p of r.problems.slice(1)) lines.push(`  also: ${p}`);
  if (!r.certificate && !r.renewal) return lines.join('\n') + '\n';
  for (const section of [certificateRows, renewalRows, caRows, reloadRows]) {
    lines.push('');
    section(r, out);
  }
  return lines.join('\n') + '\n';
}

/** Where a section's rows go, and how they are painted. */
interface Out {
  row(label: string, value: string): void;
  paint(code: string, text: string): string;
  /** Red on a terminal: what is wrong. */
  bad(text: string): string;
  now: Date;
  color: boolean;
}

function certificateRows(r: StatusReport, out: Out): void {
  const c = r.certificate;
  if (c) {
    out.row('names', c.names.join(', ') || '(none)');
    if (c.missingNames.length) out.row('missing names', out.bad(c.missingNames.join(', ')));
    out.row('serial', c.serial);
    out.row('issuer', c.issuer);
    out.row('placeholder', c.placeholder ? out.paint('33', 'YES - self-signed stand-in until the CA answers') : 'no');
    out.row('valid from', `${c.notBefore} (${relative(c.notBefore, out.now)})`);
    out.row(
      'valid until',
      `${c.notAfter} (${c.expired ? out.bad(`expired ${relative(c.notAfter, out.now)}`) : relative(c.notAfter, out.now)})`,
    );
    out.row('lifetime', `${bar(c.lifetimeUsed, out.color)} ${Math.round(c.lifetimeUsed * 100)}% used`);
    out.row('key', c.keyMatches ? 'matches the certificate' : out.bad('DOES NOT MATCH the certificate'));
    out.row(
      'chain',
      c.chainVerifies
        ? 'verifies to the pinned root'
        : c.placeholder
          ? 'self-signed placeholder'
          : out.bad(`DOES NOT VERIFY: ${c.chainProblem ?? ''}`),
    );
    out.row('files', `${c.directory} (set ${c.set})`);
    const broken = (c.publishedNames ?? []).filter((p) => p.state !== 'ok');
    const names = (c.publishedNames ?? []).map((p) => p.name).join(', ');
    const brokenText = broken.map((p) => `${p.name} ${p.state.replace('-', ' ')}`).join(', ');
    out.row('published', broken.length ? out.bad(brokenText) : `${names} link to the live set`);
  } else {
    out.row('certificate', out.bad('none installed'));
  }
}

function methodText(method: 'auto' | 'acme' | 'step'): string {
  if (method === 'acme') return 'acme (an ACME order every time)';
  if (method === 'step') return "step (the CA's renewal API only)";
  return "auto (the CA's renewal API, ACME when it cannot)";
}

function renewalRows(r: StatusReport, out: Out): void {
  const n = r.renewal;
  out.row(
    'next renewal',
    n.next
      ? `${n.next} (${n.due ? `due since ${human((out.now.getTime() - Date.parse(n.next)) / 1000)}` : relative(n.next, out.now)})`
      : 'as soon as possible (no certificate)',
  );
  if (n.nextAttempt) out.row('next retry', `${n.nextAttempt} (${relative(n.nextAttempt, out.now)})`);
  const last = n.lastAttempt;
  out.row(
    'last attempt',
    last
      ? `${last.at} (${relative(last.at, out.now)}) ${last.result === 'failed' ? out.bad('FAILED') : last.result}${last.error ? `: ${last.error}` : ''}`
      : 'never',
  );
  out.row('last success', n.lastSuccess ? `${n.lastSuccess} (${relative(n.lastSuccess, out.now)})` : 'never');
  const lr = n.lastRenewal;
  if (lr)
    out.row(
      'renewed by',
      `${lr.method === 'step' ? "the CA's renewal API" : 'an ACME order'} at ${lr.at} (${relative(lr.at, out.now)})${lr.fallback ? `; not the API: ${lr.fallback}` : ''}`,
    );
  if (n.method) out.row('renew method', methodText(n.method));
  if (n.consecutiveFailures) out.row('failures', `${n.consecutiveFailures} in a row`);
  const al = n.caOutageAllowance;
  if (al) {
    const left = `${human(al.seconds)} from now`;
    const normal = `a normal day leaves ${human(al.normalDaySeconds)} (warn below ${human(al.warnBelowSeconds)})`;
    out.row('CA may be down', `${al.seconds < al.warnBelowSeconds ? out.paint('33', left) : left}; ${normal}`);
  }
}

function caRows(r: StatusReport, out: Out): void {
  out.row('CA', r.ca.url);
  out.row('pinned root', r.ca.pinnedFingerprints.join(', ') || '(from ca.rootFile)');
  const trustText = {
    ok: 'ok (the CA chains to the pinned root)',
    broken: out.bad('BROKEN'),
    'not-bootstrapped': out.paint('33', 'not bootstrapped yet'),
  }[r.ca.trust];
  out.row('trust', trustText + (r.ca.trustDetail && r.ca.trust !== 'ok' ? `: ${r.ca.trustDetail}` : ''));
  if (r.ca.offeredFingerprints.length) out.row('CA offers', r.ca.offeredFingerprints.join(', '));
  const rp = r.ca.lastRepin;
  if (rp)
    out.row(
      'last re-pin',
      `${rp.at} (${relative(rp.at, out.now)}) ${rp.from.join(', ') || '-'} -> ${rp.to.join(', ')}, vouched by ${rp.vouchedBy}`,
    );
  const untrusted = r.ca.untrustedRoots ?? [];
  if (untrusted.length) out.row('not trusted', out.paint('33', untrusted.map((u) => u.fingerprint).join(', ')));
}

function reloadRows(r: StatusReport, out: Out): void {
  const c = r.certificate;
  const rl = r.reload.lastResult;
  out.row('reload', r.reload.target);
  out.row(
    'last reload',
    rl
      ? `${rl.at} (${relative(rl.at, out.now)}) ${rl.ok ? 'ok' : out.bad('FAILED')}${rl.detail ? `: ${rl.detail}` : ''}`
      : 'never',
  );
  const served =
    r.reload.servedMatches === null
      ? `not checked${r.reload.verify ? '' : ' (set reload.verify to confirm the served serial)'}`
      : r.reload.servedMatches
        ? `matches the installed certificate (serial ${rl?.servedSerial} on ${r.reload.verify ?? 'reload.verify'})`
        : out.bad(`STALE: serial ${rl?.servedSerial} was served, not ${c?.serial ?? 'the installed one'}`);
  out.row('served', served);
}

/**
 * Performance data for the first line, in the monitoring-plugin format
 * 'label=value[UOM];warn;crit;min;max' (thresholds as ranges: "N:" alerts
 * below N), so Nagios, Icinga and NRPE graph it:
 *   expiry     seconds until the certificate expires; warn below the point
 *              where status warns (renewal overdue), crit below 0 (expired);
 *              max the lifetime
 *   allowance  seconds the CA may stay down before the certificate expires
 *              unrenewed; warn below renewal.minAllowance, crit below 0, max
 *              what a normal day leaves
 * A report without a certificate has none.
 */
export function perfdata(r: Pick<StatusReport, 'certificate' | 'renewal'>): string {
  const c = r.certificate;
  if (!c) return '';
  const items: string[] = [];
  const notAfter = Date.parse(c.notAfter);
  const lifetime = notAfter - Date.parse(c.notBefore);
  const next = r.renewal?.next ? Date.parse(r.renewal.next) : undefined;
  const warnFrom = next === undefined ? undefined : Math.floor((notAfter - next - overdueGraceMs(lifetime)) / 1000);
  const warn = warnFrom === undefined || c.placeholder ? '' : `${warnFrom}:`;
  items.push(`expiry=${c.secondsToExpiry}s;${warn};0:;;${Math.round(lifetime / 1000)}`);
  const allowance = r.renewal?.caOutageAllowance;
  if (allowance) {
    // The status warns below renewal.minAllowance (exit unchanged), as the text row shows.
    items.push(`allowance=${allowance.seconds}s;${allowance.warnBelowSeconds}:;0:;;${allowance.normalDaySeconds}`);
  }
  return items.join(' ');
}

/** 20 cells; ASCII when plain, coloured blocks on a terminal. */
export function bar(fraction: number, color: boolean): string {
  const width = 20;
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  if (!color) return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const code = fraction >= 1 ? '31' : fraction >= 0.8 ? '33' : '32';
  return `\u001b[${code}m${'█'.repeat(filled)}\u001b[2m${'░'.repeat(width - filled)}\u001b[0m`;
}

/** 3h12m, 2d4h, 5m07s, 42s. */
export function human(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

export function relative(iso: string, now: Date): string {
  const seconds = (Date.parse(iso) - now.getTime()) / 1000;
  return seconds >= 0 ? `in ${human(seconds)}` : `${human(seconds)} ago`;
}

/** Version tag of the `--line` format; a new field is appended and bumps it (v2: the certificate's name). */
export const STATUS_LINE_VERSION = 'v2';

/**
 * `status --line`: one line of tab-separated fields for scripts that have a
 * POSIX shell but no JSON parser (a hypervisor host asking every container).
 * Fields: version, status, names, seconds to expiry, seconds to the next
 * renewal (negative when due), pinned fingerprints, the first problem (or the
 * last attempt's error), and (v2) the certificate's name. An absent value is
 * "-"; no field is ever empty and none contains a tab, a newline or any
 * other control character. Without a configuration there is no certificate
 * to name: the one line is v1's seven fields.
 */
export function renderStatusLine(
  report: Pick<StatusReport, 'status' | 'problems'> & Partial<Pick<StatusReport, 'certificate' | 'renewal' | 'ca'>>,
  now: Date,
  name?: string,
): string {
  const r = printable(report);
  const clean = (s: string | null | undefined) => (s ? s.replace(/[\t\r\n]+/g, ' ').trim() || '-' : '-');
  const secondsTo = (iso: string | null | undefined) =>
    iso ? String(Math.round((Date.parse(iso) - now.getTime()) / 1000)) : '-';
  const c = r.certificate;
  const fields = [
    name === undefined ? 'v1' : STATUS_LINE_VERSION,
    r.status,
    clean(c?.names.join(',')),
    c ? String(Math.round(c.secondsToExpiry)) : '-',
    secondsTo(r.renewal?.next),
    clean(r.ca?.pinnedFingerprints.join(',')),
    clean(r.problems[0] ?? r.renewal?.lastAttempt?.error),
    ...(name === undefined ? [] : [name]),
  ];
  return fields.join('\t') + '\n';
}

/** `status --line` of the agent: one line per certificate. */
export function renderStatusLines(report: AgentStatusReport, now: Date): string {
  return report.certificates.map((c) => renderStatusLine(c, now, c.name)).join('');
}

/**
 * The agent's report for a person: one certificate as it always was; several
 * under a first line with the worst verdict and each certificate's, then
 * each certificate's screen headed by its name.
 */
export function renderAgentStatus(report: AgentStatusReport, opts: RenderOptions): string {
  const full = (c: CertificateReport): StatusReport =>
    ({ schema: report.schema, checkedAt: report.checkedAt, ...c }) as StatusReport;
  const [only] = report.certificates;
  if (report.certificates.length === 1 && only) return renderStatus(full(only), opts);
  const paint = (code: string, text: string) => (opts.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const each = report.certificates.map((c) => `${printable(c.name)} ${paint(COLORS[c.status], c.status)}`);
  const head = `cert-agent ${paint(COLORS[report.status], report.status)} - ${report.certificates.length} certificates: ${each.join(', ')}\n`;
  const blocks = report.certificates.map((c) =>
    renderStatus(full(c), opts).replace(/^cert-agent /, `${printable(c.name)}: `),
  );
  return [head, ...blocks].join('\n');
}
