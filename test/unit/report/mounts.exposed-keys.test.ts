/**
 * doctor finds a host directory mounted into the container with private keys
 * anyone can read (the legacy shared-directory setup), wherever it is
 * mounted, and names the mount to delete; real files in a temp directory
 * stand in for the mount, described by a mountinfo line as Proxmox shows it.
 */
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkExposedKeyMounts, hostMountsWithReadableKeys, parseMountinfo } from '../../../agent/report/doctor.js';
import { tempDir } from '../../helpers/agent.js';

let dir: string;
let outside: string;
beforeEach(() => {
  dir = tempDir('cert-agent-mount-');
  outside = tempDir('cert-agent-outside-');
  // The seed's layout: step-ca's tree, chmod -R a+r.
  mkdirSync(join(dir, 'secrets'));
  mkdirSync(join(dir, 'certs'));
  writeFileSync(join(dir, 'secrets/intermediate_ca_key'), 'k', { mode: 0o644 });
  writeFileSync(join(dir, 'secrets/root_ca_key'), 'k', { mode: 0o644 });
  writeFileSync(join(dir, 'certs/root_ca.crt'), 'c', { mode: 0o644 });
  writeFileSync(join(dir, 'nginx.internal.key'), 'k', { mode: 0o644 });
  writeFileSync(join(dir, 'key.pem'), 'k', { mode: 0o644 });
  writeFileSync(join(dir, 'cert.pem'), 'c', { mode: 0o644 });
  // A link is never followed, even to a readable key.
  writeFileSync(join(outside, 'other.key'), 'k', { mode: 0o644 });
  symlinkSync(outside, join(dir, 'elsewhere'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const esc = (p: string) => p.replace(/ /g, '\\040');
const line = (root: string, point: string, fstype = 'ext4', source = '/dev/sdb1') =>
  `1023 1021 0:65 ${esc(root)} ${esc(point)} rw,relatime shared:12 - ${fstype} ${source} rw`;
const ROOTFS = '1021 1020 0:63 /subvol-101-disk-0 / rw,relatime - zfs rpool/data/subvol-101-disk-0 rw';

describe('hostMountsWithReadableKeys', () => {
  it('finds the world-readable keys on a host directory bind-mounted in', () => {
    const mounts = parseMountinfo([ROOTFS, line('/quickOS/lxc-persistent-data/103/ssl', dir)].join('\n'));
    const found = hostMountsWithReadableKeys(mounts);
    expect(found).toHaveLength(1);
    expect(found[0]!.mount.root).toBe('/quickOS/lxc-persistent-data/103/ssl');
    expect(found[0]!.files).toEqual([
      'key.pem',
      'nginx.internal.key',
      'secrets/intermediate_ca_key',
      'secrets/root_ca_key',
    ]);
  });

  it('finds them on a network share mounted whole', () => {
    const found = hostMountsWithReadableKeys(parseMountinfo([ROOTFS, line('/', dir, 'nfs4', 'nas:/ssl')].join('\n')));
    expect(found.map((f) => f.mount.source)).toEqual(['nas:/ssl']);
  });

  it('says nothing once the keys are private, or for a local volume, or the root file system', () => {
    for (const f of ['secrets/intermediate_ca_key', 'secrets/root_ca_key', 'nginx.internal.key', 'key.pem']) {
      chmodSync(join(dir, f), 0o600);
    }
    expect(hostMountsWithReadableKeys(parseMountinfo(line('/quickOS/103/ssl', dir)))).toEqual([]);
    chmodSync(join(dir, 'key.pem'), 0o644);
    expect(hostMountsWithReadableKeys(parseMountinfo(line('/', dir)))).toEqual([]);
    expect(hostMountsWithReadableKeys(parseMountinfo(ROOTFS))).toEqual([]);
  });
});

describe('doctor', () => {
  it('reports the mount as a PROBLEM naming the path, the keys and how to delete the mount point', () => {
    const mounts = parseMountinfo([ROOTFS, line('/quickOS/lxc-persistent-data/103/ssl', dir)].join('\n'));
    const lines = checkExposedKeyMounts(mounts);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ status: 'PROBLEM', reason: 'mount' });
    expect(lines[0]!.message).toContain(`${dir} is a mount of /quickOS/lxc-persistent-data/103/ssl (from /dev/sdb1)`);
    expect(lines[0]!.message).toContain('(key.pem, nginx.internal.key, secrets/intermediate_ca_key and 1 more)');
    expect(lines[0]!.message).toContain(`pct set <ID> -delete mpN\` (the mpN whose mp=${dir}`);
  });
});
