import { chmodSync, chownSync, linkSync, mkdirSync, rmSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { auditOwnedPaths, wantedPaths } from '../../../agent/store/audit.js';
import { installedSet } from './fixture.js';

let base = '';
afterEach(() => {
  if (base) rmSync(base, { recursive: true, force: true });
  base = '';
});

const UID = process.getuid?.() ?? 0;
const GID = process.getgid?.() ?? 0;

describe('wantedPaths', () => {
  it('lists the directories and secrets of the table, with the modes and owners of the ownership', () => {
    const want = wantedPaths({ stateDir: '/s', certDir: '/c' }, { group: 4242 }, ['a']);
    expect(want.map((w) => [w.path, w.what, w.kind, w.mode.toString(8), w.owner])).toEqual([
      ['/s', 'state directory', 'directory', '700', { uid: UID, gid: -1 }],
      ['/s/account.key', 'ACME account key', 'file', '600', { uid: UID, gid: -1 }],
      ['/c', 'certificate directory', 'directory', '750', { uid: UID, gid: 4242 }],
      ['/c/.sets', 'certificate sets directory', 'directory', '750', { uid: UID, gid: 4242 }],
      ['/c/.sets/a', 'certificate set', 'directory', '750', { uid: UID, gid: 4242 }],
      ['/c/.sets/a/key.pem', 'private key', 'file', '640', { uid: UID, gid: 4242 }],
      ['/c/.sets/a/combined.pem', 'private key (combined.pem)', 'file', '640', { uid: UID, gid: 4242 }],
    ]);
  });

  it('an unknown ownership checks no owner below the certificate directory; no stateDir, no state paths', () => {
    const want = wantedPaths({ certDir: '/c' }, undefined, []);
    expect(want.map((w) => [w.path, w.mode.toString(8), w.owner])).toEqual([
      ['/c', '700', undefined],
      ['/c/.sets', '700', undefined],
    ]);
  });
});

describe('auditOwnedPaths', () => {
  async function setup() {
    const set = await installedSet();
    base = set.base;
    const stateDir = join(set.base, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    return { ...set, dirs: { stateDir, certDir: set.dir } };
  }

  it('an install is what the table wants', async () => {
    const { dirs } = await setup();
    const { paths, foreignKeyLink } = auditOwnedPaths(dirs, {}, false);
    expect(foreignKeyLink).toBeUndefined();
    expect(paths.map((p) => ('loose' in p ? [p.what, p.loose, p.closed, p.wrongOwner] : p))).toEqual([
      ['state directory', false, false, false],
      ['certificate directory', false, false, false],
      ['certificate sets directory', false, false, false],
      ['certificate set', false, false, false],
      ['private key', false, false, false],
      ['private key (combined.pem)', false, false, false],
    ]);
  });

  it('says what is wrong without fix, and with fix what it became', async () => {
    const { dirs, live } = await setup();
    const key = join(live.path, 'key.pem');
    chmodSync(key, 0o644);
    chownSync(key, 65534, 65534);
    const seen = auditOwnedPaths(dirs, {}, false).paths.find((p) => p.path === key);
    expect(seen).toMatchObject({ loose: true, wrongOwner: true, uid: UID, gid: GID });
    expect(seen && 'fixed' in seen).toBe(false);
    const fixed = auditOwnedPaths(dirs, {}, true).paths.find((p) => p.path === key);
    expect(fixed).toMatchObject({ fixed: { mode: 0o600, owner: true } });
    expect([statSync(key).mode & 0o777, statSync(key).uid]).toEqual([0o600, UID]);
  });

  it('with a consumer group, a key the group cannot read is closed', async () => {
    const { dirs, live } = await setup();
    const audit = auditOwnedPaths(dirs, { group: GID }, false).paths.find((p) => p.path === join(live.path, 'key.pem'));
    expect(audit).toMatchObject({ closed: true, loose: false });
  });

  it('a link or a hard-linked file where a key belongs is not ours: never followed or changed', async () => {
    const { dirs, live } = await setup();
    const key = join(live.path, 'key.pem');
    const combined = join(live.path, 'combined.pem');
    unlinkSync(key);
    symlinkSync('/etc/shadow', key);
    linkSync(combined, join(base, 'elsewhere.pem'));
    const odd = auditOwnedPaths(dirs, {}, true).paths.filter((p) => 'notOurs' in p);
    expect(odd.map((p) => [p.path, 'notOurs' in p && p.notOurs])).toEqual([
      [key, 'a symbolic link to /etc/shadow'],
      [combined, 'a file with 2 hard links'],
    ]);
  });

  it('a published key.pem linked elsewhere is named; a plain key.pem there is audited as a key', async () => {
    const { dirs } = await setup();
    const named = join(dirs.certDir, 'key.pem');
    unlinkSync(named);
    symlinkSync('/etc/ssl/private/other.pem', named);
    expect(auditOwnedPaths(dirs, {}, false).foreignKeyLink).toEqual({
      path: named,
      found: 'a symbolic link to /etc/ssl/private/other.pem',
      want: 'current/key.pem',
    });
  });
});
