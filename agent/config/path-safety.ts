/**
 * Whether the paths a configuration names are safe to obey as root. Apart
 * from the parser so that a configuration read from the parsed-config cache
 * is checked against the file system of now without loading the YAML parser.
 */
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../lib/errors.js';
import type { Config } from './config.js';

/**
 * The files the agent obeys or writes must not be open to other users: a
 * world-writable config lets anyone choose the reload command run as root,
 * and a symlink another user owns (or a world-writable parent without the
 * sticky bit) lets them redirect where keys are written. Checked at load, on
 * what exists now; missing directories are created later with private modes.
 * `configPath` undefined: a configuration that did not come from the file now
 * (the daemon's, sent to its pass), so only the paths it names are checked.
 */
export function checkPathSafety(configPath: string | undefined, config: Config): void {
  const paths: [string, string][] = [
    ...(configPath !== undefined ? [['', configPath] as [string, string]] : []),
    ['certificate.dir', config.certificate.dir],
    ['stateDir', config.stateDir],
  ];
  if (config.challenge.mode === 'webroot') paths.push(['challenge.webroot', config.challenge.webroot]);
  for (const [field, path] of paths) {
    const problem = unsafePathProblem(resolve(path));
    if (problem) throw new ConfigError(field, `${JSON.stringify(path)} ${problem}`);
  }
  const owned = configPath !== undefined ? configOwnershipProblem(resolve(configPath)) : undefined;
  if (owned) throw new ConfigError('', owned);
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

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
