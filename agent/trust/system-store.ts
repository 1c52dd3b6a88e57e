/**
 * trust.installSystem: also put the pinned roots into the
 * container's system store, so other programs there (curl, apt, language
 * runtimes) trust the site CA. Only roots the agent itself trusts — pinned, or
 * added over a connection verified by a pinned root — are ever installed.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { describeError } from '../lib/errors.js';
import { readIfExists, writeFileAtomic } from '../lib/fs.js';
import type { Logger } from '../lib/log.js';
import { runArgv } from '../lib/run.js';
import type { TrustBundle } from './file.js';

export const SYSTEM_CA_DIR = '/usr/local/share/ca-certificates';
const PREFIX = 'cert-agent-';

/** Writes one .crt per root (removing ours that are no longer trusted) and runs update-ca-certificates when anything changed. */
export async function installSystemTrust(
  config: Config,
  bundle: TrustBundle,
  log: Logger,
  dir = SYSTEM_CA_DIR,
  updater = ['update-ca-certificates'],
): Promise<boolean> {
  if (!config.trust.installSystem) return false;
  try {
    let changed = false;
    const wanted = new Map(bundle.roots.map((r) => [`${PREFIX}${r.fingerprint.slice(0, 16)}.crt`, r.pem]));
    for (const [name, pem] of wanted) {
      if (readIfExists(join(dir, name)) === pem) continue;
      writeFileAtomic(join(dir, name), pem, 0o644);
      changed = true;
    }
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      if (name.startsWith(PREFIX) && name.endsWith('.crt') && !wanted.has(name)) {
        rmSync(join(dir, name), { force: true });
        changed = true;
      }
    }
    if (!changed) return false;
    const result = await runArgv(updater, 60);
    if (result.code !== 0) throw new Error(`${updater.join(' ')} failed: ${result.output}`);
    log.info(
      { event: 'system_trust_installed', fingerprints: bundle.roots.map((r) => r.fingerprint), dir },
      'CA roots installed into the system store',
    );
    return true;
  } catch (err) {
    log.warn(
      { event: 'system_trust_failed', error: describeError(err) },
      'could not install the CA roots into the system store',
    );
    return false;
  }
}
