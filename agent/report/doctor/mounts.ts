/**
 * `doctor`: the certificate and state directories must be local to the
 * container, and no host directory with readable private keys may be
 * mounted in anywhere (the old shared-directory setup). The parsing of
 * mountinfo is in ../mounts.ts.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describeError } from '../../lib/errors.js';
import { hostMountsWithReadableKeys, parseMountinfo, sharedMountProblem, type Mount } from '../mounts.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

export function checkMounts({ config }: DoctorContext): Diagnosis[] {
  let mounts: Mount[];
  try {
    mounts = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch (err) {
    return [diagnosis('skip', 'mounts', `cannot read /proc/self/mountinfo: ${describeError(err)}`)];
  }
  const lines: Diagnosis[] = [];
  for (const [what, dir] of [
    ['certificate directory', config.certificate.dir],
    ['state directory', config.stateDir],
  ] as const) {
    const problem = sharedMountProblem(existingReal(dir), mounts);
    if (problem) {
      const todo =
        'keys must stay inside this container; use a local directory and remove the mount point from the ' +
        'container config (the old shared-directory setup)';
      lines.push(diagnosis('PROBLEM', 'mount', `${what} ${dir} ${problem}: ${todo}`));
    } else lines.push(diagnosis('ok', 'mount', `${what} ${dir} is local to this container`));
  }
  return [...lines, ...checkExposedKeyMounts(mounts)];
}

/** Any host directory mounted in with private keys others can read, wherever it is mounted. */
export function checkExposedKeyMounts(mounts: Mount[]): Diagnosis[] {
  return hostMountsWithReadableKeys(mounts).map(({ mount: m, files }) => {
    const shown = files.slice(0, 3).join(', ') + (files.length > 3 ? ` and ${files.length - 3} more` : '');
    return diagnosis(
      'PROBLEM',
      'mount',
      `${m.point} is a mount of ${m.root} (from ${m.source}) shared with the host, with private keys ` +
        `anyone can read (${shown}): remove it on the host with \`pct set <ID> -delete mpN\` ` +
        `(the mpN whose mp=${m.point}; or delete that mpN line from /etc/pve/lxc/<ID>.conf), ` +
        'then reboot the container',
    );
  });
}

/** The real path of the nearest existing ancestor, so a directory not yet created is judged by where it will be. */
function existingReal(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    try {
      return p === path ? realpathSync(p) : join(realpathSync(p), path.slice(p.length));
    } catch {
      if (p === dirname(p)) return path;
    }
  }
}
