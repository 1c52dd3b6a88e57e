/**
 * Permission drift: something (a package script, an operator's `chmod -R`)
 * opens the private key or its directories to group or others after the
 * agent wrote them. Every pass checks the live set; `permissions.onDrift`
 * says whether to narrow the modes back (repair, the default: it only ever
 * removes group/other bits) or only report it. Either way the log says what
 * was found, and `status` warns while a key stays open.
 */
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { LiveSet } from './sets.js';

export interface Drift {
  path: string;
  what: string;
  mode: number;
  want: number;
}

const octal = (m: number) => `0${(m & 0o777).toString(8)}`;

export function findDrift(certDir: string, live: LiveSet | undefined): Drift[] {
  const want: [string, string, number][] = [
    [certDir, 'certificate directory', 0o700],
    [join(certDir, '.sets'), 'certificate sets directory', 0o700],
  ];
  if (live) want.push([live.path, 'certificate set', 0o700], [join(live.path, 'key.pem'), 'private key', 0o600], [join(live.path, 'combined.pem'), 'private key (combined.pem)', 0o600]);
  const drift: Drift[] = [];
  for (const [path, what, mode] of want) {
    try {
      const st = statSync(path);
      if (st.mode & 0o077 & ~mode) drift.push({ path, what, mode: st.mode & 0o777, want: mode });
    } catch {
      // not there: nothing to leak
    }
  }
  return drift;
}

/** Repairs or reports drift on the live set; never fails the pass. */
export function auditPermissions(config: Config, live: LiveSet | undefined, log: Logger): Drift[] {
  const drift = findDrift(config.certificate.dir, live);
  for (const d of drift) {
    const fields = { path: d.path, what: d.what, mode: octal(d.mode), want: octal(d.want) };
    if (config.permissions.onDrift === 'report') {
      log.warn({ event: 'permissions_drift', ...fields }, `${d.what} is open to group or others; permissions.onDrift is report, so it stays: run cert-agent doctor --fix`);
      continue;
    }
    try {
      chmodSync(d.path, d.mode & 0o700);
      log.warn({ event: 'permissions_repaired', ...fields, now: octal(d.mode & 0o700) }, `${d.what} was open to group or others; removed their access`);
    } catch (err) {
      log.error({ event: 'permissions_repair_failed', ...fields, error: describeError(err) }, `cannot narrow the mode of ${d.path}`);
    }
  }
  return drift;
}
