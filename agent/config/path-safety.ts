/**
 * Whether the paths a configuration names are safe to obey as root: a
 * question about the file system of now, not about the document, so it is
 * asked at every load.
 */
import { lstatSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../lib/errors.js';
import type { Config } from './schema.js';

/**
 * The files the agent obeys or writes must not be open to other users: a
 * world-writable config lets anyone choose the reload command run as root,
 * and a directory another user can change on the way to where keys are
 * written lets them swap it for a link. Checked at load, on what exists now;
 * missing directories are created later with private modes.
 * `configPath` undefined: a configuration that did not come from the file now
 * (the daemon's, sent to its pass). Its certificate and state directories are
 * then left to the pass, which checks them by the same rule before it writes
 * anything and refuses with exit 73: what changed is the disk, not the file.
 */
export function checkPathSafety(configPath: string | undefined, config: Config, seen = new Set<string>()): void {
  // `seen`: what an earlier certificate of the same file already passed (the file, the state directory, a shared webroot).
  const once = (key: string) => !seen.has(key) && Boolean(seen.add(key));
  if (configPath !== undefined) {
    if (once(`file:${configPath}`)) {
      const problem = unsafePathProblem(resolve(configPath));
      if (problem) throw new ConfigError('', `${JSON.stringify(configPath)} ${problem}`);
      const owned = configOwnershipProblem(resolve(configPath));
      if (owned) throw new ConfigError('', owned);
    }
    for (const { field, path, which } of storeDirectories(config)) {
      if (!once(`${which}:${path}`)) continue;
      const dirProblem = storeDirectoryProblem(path, which);
      if (dirProblem) throw new ConfigError(field, `${JSON.stringify(path)} ${dirProblem}`);
    }
  }
  const secretFile = config.challenge.dns?.tsig?.secretFile;
  if (secretFile !== undefined && once(`tsig:${secretFile}`)) {
    const problem = secretFileProblem(secretFile);
    if (problem) throw new ConfigError('challenge.dns.tsig.secretFile', `${secretFile} ${problem}`);
  }
  if (config.challenge.mode === 'webroot' && once(`webroot:${config.challenge.webroot}`)) {
    const problem = unsafePathProblem(resolve(config.challenge.webroot));
    if (problem) throw new ConfigError('challenge.webroot', `${JSON.stringify(config.challenge.webroot)} ${problem}`);
  }
}

export type StoreDirectory = 'certificate' | 'state';

/** The directories the agent writes, with the field that names each. */
export function storeDirectories(config: Config): { field: string; path: string; which: StoreDirectory }[] {
  return [
    { field: 'certificate.dir', path: config.certificate.dir, which: 'certificate' },
    { field: 'stateDir', path: config.stateDir, which: 'state' },
  ];
}

/** As the kernel (MAXSYMLINKS): more links than this on one lookup is a loop, or as good as one. */
const MAX_LINKS = 40;

/**
 * The rule for the certificate and state directories, sshd's StrictModes
 * (OpenSSH's safe_path() for authorized_keys) applied to a directory:
 * every directory a lookup of `path` passes through must be owned by root
 * (or the agent's own uid when it does not run as root) and writable by
 * neither group nor others. sshd refuses any group or other write bit,
 * sticky or not, and so does this: in a sticky world-writable directory
 * another user cannot rename root's directory, but can create a missing one
 * first, or the link the agent would later follow. The lookup is redone
 * here one component at a time, as the kernel does it, so that every link
 * met (the path's own, and any in a link's target) must be root's and held
 * in such a directory, and every directory of each target is checked too;
 * a link nobody else can change cannot lead through one somebody can. The
 * state directory itself (the pinned roots, the account key) follows the
 * same rule; the certificate directory itself may still belong to the
 * consumer of an older install (the pass takes it back) but must not be
 * world-writable. Missing directories are fine, a dangling link's target
 * too: root creates them, private, in a directory this rule has checked
 * (the lookup stops there). Returns what is wrong, or undefined.
 */
export function storeDirectoryProblem(path: string, which: StoreDirectory): string | undefined {
  const abs = resolve(path);
  const rootProblem = passedDirectoryProblem('/');
  if (rootProblem) return rootProblem;
  const pending = abs.split('/').filter(Boolean);
  let cur = '/';
  let links = 0;
  while (pending.length) {
    const name = pending.shift() as string;
    if (name === '.') continue;
    if (name === '..') {
      cur = dirname(cur); // checked on the way down: cur never holds a link
      continue;
    }
    const next = join(cur, name);
    const last = pending.length === 0;
    const lst = lstatOrUndefined(next);
    if (!lst) return undefined; // missing from here down, below the checked `cur`
    if (lst.isSymbolicLink()) {
      const where = links > 0 ? 'target' : last ? 'self' : 'prefix';
      const problem = linkProblem(next, lst, where, ++links);
      if (problem) return problem;
      const target = readlinkOrUndefined(next);
      if (target === undefined) return undefined; // gone meanwhile: the write fails with its own message
      if (target.startsWith('/')) cur = '/';
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    if (last) return ownDirectoryProblem(next, which);
    if (!lst.isDirectory()) return undefined; // creating below a file fails with its own message
    const problem = passedDirectoryProblem(next);
    if (problem) return problem;
    cur = next;
  }
  return ownDirectoryProblem(cur, which); // a path or target ending in "." or ".."
}

/** A directory the lookup passes through: root's and writable by nobody else, or what is wrong. */
function passedDirectoryProblem(dir: string): string | undefined {
  const st = statOrUndefined(dir);
  if (st && (!trustedOwner(st.uid) || st.mode & 0o022)) return ancestorProblem(dir, st);
  return undefined;
}

/**
 * A link met on the lookup (the directory holding it is checked already):
 * it must be root's, and the lookup must end. `kind`: the path itself, a
 * directory above it, or a link met in the target of another.
 */
function linkProblem(link: string, lst: Stats, kind: 'self' | 'prefix' | 'target', count: number): string | undefined {
  const where = kind === 'self' ? 'is' : `${kind === 'prefix' ? 'lies under' : 'leads through'} ${link}, which is`;
  if (!trustedOwner(lst.uid)) {
    return `${where} a symlink owned by uid ${lst.uid}; another user could point it elsewhere`;
  }
  if (count > MAX_LINKS) {
    return (
      `${where} a symlink past the ${MAX_LINKS} links one lookup may follow (as the kernel limits it): ` +
      'a loop of links, or a chain too long; point the path at the directory itself'
    );
  }
  return undefined;
}

function ancestorProblem(dir: string, st: Stats): string {
  const fix = [!trustedOwner(st.uid) ? `chown root ${dir}` : '', st.mode & 0o022 ? `chmod go-w ${dir}` : '']
    .filter(Boolean)
    .join('; ');
  return (
    `lies under ${dir}, which is owned by uid ${st.uid} with mode ${modeText(st)}; ` +
    'the certificate and state directories and every directory above them must be owned by root ' +
    'and writable by neither group nor others (sticky or not, as sshd StrictModes), ' +
    `or another user could swap them for a link: ${fix}, or choose a directory only root can change`
  );
}

function ownDirectoryProblem(real: string, which: StoreDirectory): string | undefined {
  const st = statOrUndefined(real);
  if (!st) return undefined;
  if (which === 'certificate') {
    if (!(st.mode & 0o002)) return undefined;
    return `is writable by every user (mode ${modeText(st)}); remove write access for others (chmod o-w)`;
  }
  if (trustedOwner(st.uid) && !(st.mode & 0o022)) return undefined;
  const fix = [!trustedOwner(st.uid) ? `chown root ${real}` : '', st.mode & 0o022 ? `chmod go-w ${real}` : '']
    .filter(Boolean)
    .join('; ');
  return (
    `is owned by uid ${st.uid} with mode ${modeText(st)}; the state directory holds the pinned roots ` +
    `and the account key, so it must be owned by root and writable by neither group nor others: ${fix}`
  );
}

function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === (process.getuid?.() ?? 0);
}

function modeText(st: Stats): string {
  return (st.mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * The config chooses commands the agent runs as root, so, like sshd's
 * StrictModes, the file and every directory above it (after resolving links)
 * must be owned by root or by the agent's own user and writable by neither
 * group nor others. The sticky bit does not excuse a directory here (sshd
 * makes no exception for it either): a shared /tmp is no place for this file.
 */
export function configOwnershipProblem(path: string): string | undefined {
  const me = process.getuid?.() ?? 0;
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return undefined; // reading it already failed or will fail with its own message
  }
  const owners = me === 0 ? 'root' : `root or uid ${me}`;
  for (let p = real; ; p = dirname(p)) {
    const st = statOrUndefined(p);
    if (!st) return undefined;
    const badOwner = st.uid !== 0 && st.uid !== me;
    const badMode = (st.mode & 0o022) !== 0;
    if (badOwner || badMode) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      const shown = JSON.stringify(path);
      const resolved = real !== path ? ` (${real})` : '';
      const what = p === real ? `${shown}${resolved} is` : `${shown} lies under ${p}, which is`;
      const fix = [badOwner ? `chown root ${p}` : '', badMode ? `chmod go-w ${p}` : ''].filter(Boolean).join('; ');
      const where = p === real ? '' : ' or move the file to a directory only root can write (e.g. /etc/cert-agent)';
      const writable = badMode ? ', writable by group or others' : '';
      return (
        `${what} owned by uid ${st.uid} with mode ${mode}${writable}; ` +
        'the configuration chooses commands run as root, so it and every directory above it ' +
        `must be owned by ${owners} and not writable by group or others: ${fix}${where}`
      );
    }
    if (dirname(p) === p) return undefined;
  }
}

/**
 * The TSIG key signs DNS updates for the zone: its file must be a regular
 * file (not a link), root's, open to nobody else, in directories only root
 * can change, both on the way as written and after resolving links. Only
 * its metadata is looked at here, never its content.
 */
export function secretFileProblem(path: string): string | undefined {
  const abs = resolve(path);
  const lst = lstatOrUndefined(abs);
  if (!lst)
    return "does not exist (or cannot be reached): create it with the TSIG key's secret, owned by root, mode 0600";
  if (lst.isSymbolicLink()) return 'is a symlink: name the file itself, owned by root, mode 0600';
  if (!lst.isFile()) return 'is not a regular file: name the file holding the TSIG secret';
  if (!trustedOwner(lst.uid)) return `is owned by uid ${lst.uid}: the TSIG key must be root's alone (chown root)`;
  if (lst.mode & 0o077) {
    const open = lst.mode & 0o044 ? 'readable' : 'writable';
    return `is ${open} by group or others (mode ${modeText(lst)}): the TSIG key must be root's alone (chmod 600)`;
  }
  let real = dirname(abs);
  try {
    real = realpathSync(real);
  } catch {
    // The file was just found: a directory gone meanwhile fails the read later with its own message.
  }
  for (const chain of new Set([dirname(abs), real])) {
    for (let p = chain; ; p = dirname(p)) {
      const st = lstatOrUndefined(p);
      // A link is checked as the link (nobody but its directory's owner can replace it); its target is `real`.
      const bad = st && (!trustedOwner(st.uid) || (!st.isSymbolicLink() && st.mode & 0o022));
      if (bad) {
        const fix = [!trustedOwner(st.uid) ? `chown root ${p}` : '', st.mode & 0o022 ? `chmod go-w ${p}` : '']
          .filter(Boolean)
          .join('; ');
        return (
          `lies under ${p}, which is owned by uid ${st.uid} with mode ${modeText(st)}; every directory above ` +
          `the TSIG key must be root's and writable by neither group nor others, or another user could swap the file: ${fix}`
        );
      }
      if (dirname(p) === p) break;
    }
  }
  return undefined;
}

function unsafePathProblem(path: string): string | undefined {
  const me = process.getuid?.() ?? 0;
  for (let p = path; ; p = dirname(p)) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      st = undefined; // not there yet
    }
    const where = p === path ? 'is' : `lies under ${p}, which is`;
    if (st?.isSymbolicLink() && st.uid !== 0 && st.uid !== me)
      return `${where} a symlink owned by uid ${st.uid}; another user could point it elsewhere`;
    if (st && p === path) {
      const target = st.isSymbolicLink() ? statOrUndefined(p) : st;
      if (target && target.mode & 0o002)
        return `is writable by every user (mode ${(target.mode & 0o7777).toString(8).padStart(4, '0')}); remove write access for others (chmod o-w)`;
    } else if (st?.isDirectory() && st.mode & 0o002 && !(st.mode & 0o1000)) {
      return `${where} writable by every user without the sticky bit; anyone could replace what is in it`;
    }
    if (dirname(p) === p) return undefined;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
