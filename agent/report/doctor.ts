/**
 * `cert-agent doctor`: audits the installation, one line per check
 * saying what is wrong and what to do. `--fix` repairs only what cannot make
 * things worse — modes and ownership of the agent's own files — and says what
 * it changed. Exit 0 when nothing is wrong (after fixes), 1 otherwise.
 *
 * Each check is a small function in doctor/ returning its lines; the list
 * below is the order they print in. What only an adapter knows (whether the
 * consumer uses the agent's files, what a challenge mode needs) comes from
 * the adapter, through its contract.
 */
import { certificatesOf, loadConfig, type Config } from '../config/config.js';
import { UsageError, describeError } from '../lib/errors.js';
import { ownershipOf } from '../store/ownership.js';
import type { Ownership } from '../store/layout.js';
import { checkCa } from './doctor/ca.js';
import { checkCertificate } from './doctor/certificate.js';
import { checkChallenge } from './doctor/challenge.js';
import { checkConsumer } from './doctor/consumer.js';
import { checkLastAttempt } from './doctor/last-attempt.js';
import { checkMounts } from './doctor/mounts.js';
import { checkOutageAllowance } from './doctor/outage-allowance.js';
import { checkPermissions } from './doctor/permissions.js';
import { checkRenewalApi } from './doctor/renewal-api.js';
import { checkServed } from './doctor/served.js';
import { diagnosis, type Diagnosis, type DoctorCheck } from './doctor/types.js';

export { checkExposedKeyMounts } from './doctor/mounts.js';
export { hostMountsWithReadableKeys, parseMountinfo, sharedMountProblem } from './mounts.js';
export type { Diagnosis } from './doctor/types.js';

/**
 * The checks, in the order they print; each needs a valid config. Those
 * about what the certificates share (mounts, the CA) run once; the others
 * once per certificate, labelled with its name when there are several.
 */
const CHECKS: { check: DoctorCheck; shared?: true }[] = [
  { check: checkPermissions },
  { check: checkMounts, shared: true },
  { check: checkCa, shared: true },
  { check: checkCertificate },
  { check: checkRenewalApi },
  { check: checkOutageAllowance },
  { check: checkConsumer },
  { check: checkChallenge },
  { check: checkLastAttempt },
  { check: checkServed },
];

export async function runDoctor(
  configPath: string,
  opts: { fix: boolean; now: Date; selfCheckPort?: number; name?: string },
): Promise<Diagnosis[]> {
  const lines: Diagnosis[] = [];
  let certs: Config[];
  try {
    const config = loadConfig(configPath);
    const named = certificatesOf(config, opts.name);
    if (!named) throw new UsageError(`--name ${JSON.stringify(opts.name)}: no such certificate in ${configPath}`);
    certs = named;
    lines.push(diagnosis('ok', 'config', `${configPath} is valid`));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    lines.push(diagnosis('PROBLEM', 'config', `${describeError(err)}; the other checks need a valid config`));
    return lines;
  }
  const several = certs.length > 1;
  for (const [i, config] of certs.entries()) {
    const label = (d: Diagnosis) => (several ? { ...d, reason: `${config.certificate.name}: ${d.reason}` } : d);
    let owner: Ownership | undefined;
    try {
      owner = ownershipOf(config);
    } catch (err) {
      const todo = 'create the user/group or change certificate.owner/group';
      lines.push(label(diagnosis('PROBLEM', 'owner', `${describeError(err)}: ${todo}`)));
    }
    const ctx = { configPath, config, owner, fix: opts.fix, now: opts.now, selfCheckPort: opts.selfCheckPort };
    for (const { check, shared } of CHECKS) {
      if (shared && i > 0) continue;
      const found = await check(ctx);
      lines.push(...(shared ? found : found.map(label)));
    }
  }
  return lines;
}

export function renderDoctor(lines: Diagnosis[]): string {
  const count = (status: Diagnosis['status']) => lines.filter((l) => l.status === status).length;
  const problems = count('PROBLEM');
  const fixed = count('FIXED');
  const warned = count('WARN');
  const out = lines.map((l) => `${l.status.padEnd(8)}${l.reason.padEnd(28)}${l.message}`);
  const extra = [fixed ? `${fixed} fixed` : '', warned ? `${warned} warning(s)` : ''].filter(Boolean).join(', ');
  if (problems) out.push(`doctor: ${problems} problem(s)${extra ? `, ${extra}` : ''}`);
  else out.push(`doctor: all good${extra ? ` (${extra})` : ''}`);
  return out.join('\n') + '\n';
}

/** 1 when any line is a problem (after fixes), 0 otherwise. */
export const doctorFailed = (lines: Diagnosis[]): boolean => lines.some((l) => l.status === 'PROBLEM');
