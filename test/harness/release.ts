/**
 * An earlier release's Debian package and template hook, for the upgrade
 * test: built from the release commit by build-release-deb.sh (the release's
 * own sources, lock file and `make deb`; about 10 s with npm's cache warm)
 * and cached next to the root filesystems, keyed by the commit, so later
 * runs take it from the cache. Works in any clone with the full history.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { ROOTFS_CACHE } from './rootfs.js';

const SCRIPT = resolve(import.meta.dirname, 'build-release-deb.sh');

/** The commit that released 0.1.0 (there is no tag); also RELEASE_COMMIT in the Makefile. */
export const RELEASE_0_1_0 = 'f59d9cc66080ce54c166fff3700e18174155f7c7';

export interface Release {
  /** cert-agent_<version>_all.deb as that release's `make deb` built it. */
  deb: string;
  /** That release's packaging/postinstall.sh. */
  hook: string;
  /** The package's Version field. */
  version: string;
}

/** The release of `commit`, built on first use (up to 10 minutes on a cold npm cache). */
export function releaseDeb(commit: string): Release {
  const out = execFileSync('bash', [SCRIPT, commit], {
    encoding: 'utf8',
    env: { ...process.env, CERT_AGENT_ROOTFS_CACHE: ROOTFS_CACHE },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 600_000,
  });
  const deb = out.trim().split('\n').pop() as string;
  const version = execFileSync('dpkg-deb', ['-f', deb, 'Version'], { encoding: 'utf8' }).trim();
  return { deb, hook: join(dirname(deb), 'postinstall.sh'), version };
}
