/** The human rendering of a StatusReport: one screen, a lifetime bar, relative times. */
import type { StatusReport } from './status.js';

export interface RenderOptions {
  color: boolean;
  now: Date;
}

const COLORS = { OK: '32', WARNING: '33', CRITICAL: '31', UNKNOWN: '35' } as const;

export function renderStatus(r: StatusReport, opts: RenderOptions): string {
  const paint = (code: string, text: string) => (opts.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(14)} ${value}`);
  lines.push(`cert-agent ${paint(COLORS[r.status], r.status)}${r.problems.length ? ` — ${r.problems[0]}` : ''}`);
  for (const p of r.problems.slice(1)) lines.push(`  also: ${p}`);
  lines.push('');
  const c = r.certificate;
  if (c) {
    row('names', c.names.join(', ') || '(none)');
    row('serial', c.serial);
    row('issuer', c.issuer + (c.placeholder ? ' (PLACEHOLDER)' : ''));
    row('valid', `${c.notBefore} → ${c.notAfter}`);
    row('lifetime', `${bar(c.lifetimeUsed, opts.color)} ${Math.round(c.lifetimeUsed * 100)}% used, ${c.secondsToExpiry >= 0 ? `expires in ${human(c.secondsToExpiry)}` : `expired ${human(-c.secondsToExpiry)} ago`}`);
    row('key', c.keyMatches ? 'matches certificate' : 'DOES NOT MATCH certificate');
    row('chain', c.chainVerifies ? 'verifies to pinned root' : c.placeholder ? 'self-signed placeholder' : 'DOES NOT VERIFY');
    row('files', c.directory);
  } else {
    row('certificate', 'none installed');
  }
  lines.push('');
  row('next renewal', r.renewal.next ? `${r.renewal.next} (${relative(r.renewal.next, opts.now)})` : 'when a certificate is installed');
  if (r.renewal.nextAttempt) row('next retry', `${r.renewal.nextAttempt} (${relative(r.renewal.nextAttempt, opts.now)})`);
  const last = r.renewal.lastAttempt;
  row('last attempt', last ? `${last.at} ${last.result}${last.error ? `: ${last.error}` : ''}` : 'never');
  if (r.renewal.consecutiveFailures) row('failures', `${r.renewal.consecutiveFailures} in a row`);
  lines.push('');
  row('CA', r.ca.url);
  row('pinned root', r.ca.pinnedFingerprints.join(', ') || '(ca.rootFile)');
  row('trust', r.ca.trust + (r.ca.trustDetail && r.ca.trust !== 'ok' ? `: ${r.ca.trustDetail}` : ''));
  const rl = r.reload.lastResult;
  row('reload', `${r.reload.target}${rl ? `, last ${rl.ok ? 'ok' : 'FAILED'} at ${rl.at}: ${rl.detail ?? ''}` : ''}`);
  if (r.reload.servedMatches !== null) row('served', r.reload.servedMatches ? 'matches the installed certificate' : 'DIFFERS from the installed certificate');
  return lines.join('\n') + '\n';
}

function bar(fraction: number, color: boolean): string {
  const width = 20;
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  if (!color) return text;
  const code = fraction >= 1 ? '31' : fraction >= 0.8 ? '33' : '32';
  return `\u001b[${code}m${text}\u001b[0m`;
}

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

function relative(iso: string, now: Date): string {
  const seconds = (new Date(iso).getTime() - now.getTime()) / 1000;
  return seconds >= 0 ? `in ${human(seconds)}` : `${human(seconds)} ago`;
}
