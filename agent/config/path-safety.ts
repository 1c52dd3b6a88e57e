/**
 * Whether the paths a configuration names are safe to obey as root. Apart
 * from the parser so that a configuration read from the parsed-config cache
 * is checked against the file system of now without loading the YAML parser.
 */
import { lstatSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../lib/errors.js';
import type { Config } from './config.js';

/**
 * The files the agent obeys or writes must not be open to other users: a
 * world-writable config lets anyone choose the reload command run as root,
 * and a symlink another user owns (or a world-writable parent without the
 * sticky bit) lets them redirect where keys are written. Checked at load, on
 * what exists now; missing directories are created later with private modes.
 */
export function checkPathSafety(configPath: string, config: Config): void {
  const paths: [string, string][] = [['', configPath], ['certificate.dir', config.certificate.dir], ['stateDir', config.stateDir]];
  if (config.challenge.mode === 'webroot') paths.push(['challenge.webroot', config.challenge.webroot]);
  for (const [field, path] of paths) {
    const problem = unsafePathProblem(resolve(path));
    if (problem) throw new ConfigError(field, `${JSON.stringify(path)} ${problem}`);
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
    if (st?.isSymbolicLink() && st.uid !== 0 && st.uid !== me) return `${where} a symlink owned by uid ${st.uid}; another user could point it elsewhere`;
    if (st && p === path) {
      const target = st.isSymbolicLink() ? statOrUndefined(p) : st;
      if (target && target.mode & 0o002) return `is writable by every user (mode ${(target.mode & 0o7777).toString(8).padStart(4, '0')}); remove write access for others (chmod o-w)`;
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
