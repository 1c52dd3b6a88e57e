/**
 * `doctor`: modes and owners of the agent's own paths. The store audits them
 * against its path table and fixes them (`--fix`) through O_NOFOLLOW
 * descriptors (store/audit.ts): a link (or a directory not the agent's)
 * where the agent keeps a directory or key is reported and never followed.
 * This check only holds the lock for `--fix` and says what the audit found.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../../config/config.js';
import { describeError } from '../../lib/errors.js';
import { auditOwnedPaths, type PathAudit } from '../../store/audit.js';
import type { Ownership } from '../../store/layout.js';
import { acquireLockWaiting } from '../../store/lock.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

/** How long `doctor --fix` waits for a renewal pass in flight before fixing nothing. */
const FIX_LOCK_WAIT_MS = 30_000;

/**
 * `--fix` changes modes and owners in the state and certificate directories,
 * so it holds the lock like every other writer there; without --fix, or when
 * no state directory exists yet (no agent has run), it only reads.
 */
export async function checkPermissions({ config, owner, fix }: DoctorContext): Promise<Diagnosis[]> {
  if (!fix || !existsSync(config.stateDir)) return permissionLines(config, owner, fix);
  let release: (() => void) | undefined;
  try {
    release = await acquireLockWaiting(config.stateDir, FIX_LOCK_WAIT_MS);
  } catch (err) {
    const todo = 'nothing was fixed; run cert-agent doctor --fix again';
    return [diagnosis('PROBLEM', 'lock', `${describeError(err)}: ${todo}`), ...permissionLines(config, owner, false)];
  }
  try {
    return permissionLines(config, owner, fix);
  } finally {
    release();
  }
}

function permissionLines(config: Config, owner: Ownership | undefined, fix: boolean): Diagnosis[] {
  const dirs = { stateDir: config.stateDir, certDir: config.certificate.dir };
  const { paths, foreignKeyLink: link } = auditOwnedPaths(dirs, owner, fix);
  const lines: Diagnosis[] = [];
  if (link) {
    const todo = "run cert-agent renew --force (it puts the agent's link back)";
    const why = `not the agent's link ${link.want}: not followed, not changed`;
    lines.push(diagnosis('PROBLEM', 'private key', `${link.path} is ${link.found}, ${why}; ${todo}`));
  }
  let good = 0;
  for (const a of paths) {
    const line = pathLine(a);
    if (line) lines.push(line);
    else good++;
  }
  if (good) lines.push(diagnosis('ok', 'permissions', `${good} path(s) private and owned as configured`));
  return lines;
}

/** What is wrong with one audited path (or what --fix changed); undefined when it is as wanted. */
function pathLine(a: PathAudit): Diagnosis | undefined {
  if ('notOurs' in a) {
    const todo = 'not followed, not changed; remove it and run cert-agent renew --force';
    return diagnosis('PROBLEM', a.what, `${a.path} is ${a.notOurs}, not the agent's: ${todo}`);
  }
  if ('chainProblem' in a) return diagnosis('PROBLEM', a.what, a.chainProblem);
  const { st, uid, gid } = a;
  if (!a.loose && !a.closed && !a.wrongOwner) return undefined;
  const modes = `(mode ${octal4(st.mode)}, want ${octal4(a.mode)})`;
  const who = [st.mode & 0o070 ? 'group' : '', st.mode & 0o007 ? 'others' : ''].filter(Boolean).join(' and ');
  const problems = [
    ...(a.loose ? [`is ${st.mode & 0o044 ? 'readable' : 'accessible'} by ${who} ${modes}`] : []),
    ...(a.closed ? [`is not readable by the consumer group ${gid} ${modes}`] : []),
    ...(a.wrongOwner ? [`is owned by ${st.uid}:${st.gid}, want ${uid}:${gid}`] : []),
  ].join(' and ');
  if (a.fixed) {
    const changed = [
      (st.mode & 0o777) !== a.fixed.mode ? `mode ${octal4(st.mode)} -> ${octal4(a.fixed.mode)}` : '',
      a.fixed.owner ? `owner ${st.uid}:${st.gid} -> ${uid}:${gid}` : '',
    ];
    return diagnosis('FIXED', a.what, `${a.path}: ${changed.filter(Boolean).join(', ')}`);
  }
  if (a.fixError !== undefined)
    return diagnosis('PROBLEM', a.what, `${a.path} ${problems}; --fix failed: ${a.fixError}`);
  return diagnosis('PROBLEM', a.what, `${a.path} ${problems}: run cert-agent doctor --fix`);
}

const octal4 = (m: number) => (m & 0o777).toString(8).padStart(4, '0');
