/**
 * How doctor tells a local directory from one shared with the host, on
 * mountinfo lines as a Proxmox LXC container shows them: the root file
 * system, a storage volume mounted whole (local), and a host directory
 * bind-mounted in (the legacy /mnt/pve/…/ssl layout).
 */
import { describe, expect, it } from 'vitest';
import { parseMountinfo, sharedMountProblem } from '../../../agent/report/doctor.js';

const MOUNTINFO = [
  '1021 1020 0:63 /subvol-101-disk-0 / rw,relatime shared:540 - zfs rpool/data/subvol-101-disk-0 rw,xattr,posixacl',
  '1022 1021 0:64 / /srv/data rw,relatime - ext4 /dev/rbd0 rw',
  '1023 1021 0:65 /quickOS/lxc-persistent-data/103/ssl /etc/step-ca/ssl rw,relatime shared:12 - ext4 /dev/sdb1 rw',
  '1024 1021 0:65 /quickOS/lxc-persistent-data/103/ssl /etc/traefik/certs rw,relatime - ext4 /dev/sdb1 rw',
  '1025 1021 0:66 / /mnt/nfs rw,relatime - nfs4 nas:/export rw',
  '1026 1021 0:67 /with\\040space /mnt/odd\\040dir rw - ext4 /dev/sdc1 rw',
].join('\n');

describe('parseMountinfo', () => {
  it('reads root, mount point, type and source, unescaping octal', () => {
    const mounts = parseMountinfo(MOUNTINFO);
    expect(mounts).toHaveLength(6);
    expect(mounts[2]).toEqual({
      root: '/quickOS/lxc-persistent-data/103/ssl',
      point: '/etc/step-ca/ssl',
      fstype: 'ext4',
      source: '/dev/sdb1',
    });
    expect(mounts[5]).toMatchObject({ root: '/with space', point: '/mnt/odd dir' });
  });
});

describe('sharedMountProblem', () => {
  const mounts = parseMountinfo(MOUNTINFO);
  it('accepts the container root file system, even when it is a subvolume', () => {
    expect(sharedMountProblem('/etc/cert-agent/tls', mounts)).toBeUndefined();
  });
  it('accepts a whole storage volume mounted into the container', () => {
    expect(sharedMountProblem('/srv/data/tls', mounts)).toBeUndefined();
  });
  it('flags a host directory bind-mounted in, and paths below it', () => {
    expect(sharedMountProblem('/etc/step-ca/ssl', mounts)).toBe(
      'is on a bind mount of /quickOS/lxc-persistent-data/103/ssl (from /dev/sdb1) at /etc/step-ca/ssl',
    );
    expect(sharedMountProblem('/etc/traefik/certs/live', mounts)).toMatch(/bind mount of \/quickOS/);
  });
  it('flags a network share', () => {
    expect(sharedMountProblem('/mnt/nfs/tls', mounts)).toBe('is on a nfs4 mount from nas:/export at /mnt/nfs');
  });
  it('does not confuse a sibling path with a mount point prefix', () => {
    expect(sharedMountProblem('/etc/step-ca/ssl-local', mounts)).toBeUndefined();
  });
});
