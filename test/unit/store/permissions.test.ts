import { chmodSync, rmSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../agent/config/config.js';
import { createLogger } from '../../../agent/lib/log.js';
import { auditPermissions, findDrift } from '../../../agent/store/permissions.js';
import { installedSet } from './fixture.js';

let base: string;
afterEach(() => rmSync(base, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;
const configFor = (dir: string, onDrift: 'repair' | 'report') =>
  ({ certificate: { dir, owner: 'root', group: 'root' }, permissions: { onDrift } }) as unknown as Config;
function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { log, events: () => lines.map((l) => l.event) };
}

describe('permission drift', () => {
  it('an install leaves nothing to find', async () => {
    const set = await installedSet();
    base = set.base;
    expect(findDrift(set.dir, set.live)).toEqual([]);
    expect(findDrift(set.dir, set.live, { group: 4242 })).toEqual([]);
  });

  it('finds the keys and directories opened beyond the table, and only those', async () => {
    const set = await installedSet();
    base = set.base;
    chmodSync(join(set.live.path, 'key.pem'), 0o644);
    chmodSync(join(set.live.path, 'cert.pem'), 0o666); // public: not drift
    chmodSync(set.dir, 0o755);
    expect(findDrift(set.dir, set.live).map((d) => [d.what, d.kind, d.mode, d.want])).toEqual([
      ['certificate directory', 'directory', 0o755, 0o700],
      ['private key', 'file', 0o644, 0o600],
    ]);
    // With a consumer group the same key is drift only for others' bits.
    chmodSync(join(set.live.path, 'key.pem'), 0o640);
    expect(findDrift(set.dir, set.live, { group: 4242 }).map((d) => d.path)).toEqual([set.dir]);
  });

  it('a link where a key belongs is reported as found, never followed', async () => {
    const set = await installedSet();
    base = set.base;
    const key = join(set.live.path, 'combined.pem');
    unlinkSync(key);
    symlinkSync('/etc/shadow', key);
    const [drift] = findDrift(set.dir, set.live);
    expect(drift).toMatchObject({
      path: key,
      what: 'private key (combined.pem)',
      found: 'a symbolic link to /etc/shadow',
    });
  });

  it('repair narrows the mode and logs it; report leaves it and warns', async () => {
    const set = await installedSet();
    base = set.base;
    const key = join(set.live.path, 'key.pem');
    chmodSync(key, 0o644);
    const reported = capture();
    expect(auditPermissions(configFor(set.dir, 'report'), set.live, reported.log)).toHaveLength(1);
    expect([mode(key), reported.events()]).toEqual([0o644, ['permissions_drift']]);
    const repaired = capture();
    auditPermissions(configFor(set.dir, 'repair'), set.live, repaired.log);
    expect([mode(key), repaired.events()]).toEqual([0o600, ['permissions_repaired']]);
  });
});
