/**
 * Permission drift: something (a package script, an operator's `chmod -R`)
 * opens the private key or its directories to group or others after the
 * agent wrote them. Every pass checks the live set; `permissions.onDrift`
 * says whether to narrow the modes back (repair, the default: it only ever
 * removes bits the model does not give) or only report it. Either way the
 * log says what was found, and `status` warns while a key stays open.
 *
 * The wanted modes are the path table's (layout.ts, through audit.ts): with
 * a consumer group, directories 0750 and keys 0640; without, 0700 and 0600.
 * Only the certificate directory and the live set are checked here. Paths are checked
 * with lstat and changed through O_NOFOLLOW descriptors: a symbolic link
 * where the agent keeps a directory or key is reported, never followed.
 */
import type { Config } from '../config/config.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { ownershipForReading } from './ownership.js';
import { closeQuietly, describeEntry, lstatMaybe, octal, openNoFollow, setAccessFd } from '../lib/safefs.js';
import type { LiveSet } from './sets.js';
import type { Ownership } from './layout.js';
import { wantedPaths } from './audit.js';
import { openCheckedDir } from './directories.js';

export interface Drift {
  path: string;
  what: string;
  mode: number;
  want: number;
  kind: 'directory' | 'file';
  /** Set when the path is not a directory or file at all (a link): never followed, never repaired. */
  found?: string;
}

export function findDrift(certDir: string, live: LiveSet | undefined, owner: Ownership = {}): Drift[] {
  const want = wantedPaths({ certDir }, owner, live ? [live.id] : []);
  const drift: Drift[] = [];
  for (const { path, what, mode, kind } of want) {
    const dir = kind === 'directory';
    let st;
    try {
      st = lstatMaybe(path);
    } catch {
      continue;
    }
    if (!st) continue; // not there: nothing to leak
    if (path === certDir && st.isSymbolicLink()) st = lstatMaybe(`${path}/.`) ?? st;
    // The configured directory itself may be a link root made; below it, a link is not ours.
    if (st.isSymbolicLink() && path !== certDir) {
      drift.push({ path, what, kind, mode: st.mode & 0o777, want: mode, found: describeEntry(path, st) });
      continue;
    }
    if (st.isSymbolicLink() || (dir ? !st.isDirectory() : !st.isFile())) continue;
    if (st.mode & 0o077 & ~mode) drift.push({ path, what, kind, mode: st.mode & 0o777, want: mode });
  }
  return drift;
}

/** Repairs or reports drift on the live set; never fails the pass. */
export function auditPermissions(config: Config, live: LiveSet | undefined, log: Logger): Drift[] {
  const drift = findDrift(config.certificate.dir, live, ownershipForReading(config));
  for (const d of drift) {
    const { name: certificate } = config.certificate;
    const fields = { certificate, path: d.path, what: d.what, mode: octal(d.mode), want: octal(d.want) };
    if (d.found) {
      const msg = `${d.what} ${d.path} is ${d.found}, not the agent's: not followed, not changed; remove it`;
      log.error({ event: 'permissions_refused', ...fields, found: d.found }, msg);
      continue;
    }
    if (config.permissions.onDrift === 'report') {
      log.warn(
        { event: 'permissions_drift', ...fields },
        `${d.what} is open to group or others; permissions.onDrift is report, so it stays: run cert-agent doctor --fix`,
      );
      continue;
    }
    // Only ever narrows: the owner's bits stay, group/other bits the model does not give go.
    const now = d.mode & (0o700 | d.want);
    let opened: ReturnType<typeof openNoFollow> | undefined;
    try {
      // The configured directory (maybe a link root made) is checked again and opened as what was checked.
      opened = d.path === config.certificate.dir ? openCheckedDir(d.path) : openNoFollow(d.path, d.kind);
      setAccessFd(opened.fd, opened.st, { uid: -1, gid: -1, mode: (opened.st.mode & 0o7000) | now });
      const msg = `${d.what} was open to group or others; removed their access`;
      log.warn({ event: 'permissions_repaired', ...fields, now: octal(now) }, msg);
    } catch (err) {
      const error = describeError(err);
      log.error({ event: 'permissions_repair_failed', ...fields, error }, `cannot narrow the mode of ${d.path}`);
    } finally {
      if (opened) closeQuietly(opened.fd);
    }
  }
  return drift;
}
