/**
 * /proc/self/mountinfo, read for one question: is a directory on a mount the
 * host shares into this container — a bind mount of a host directory, or a
 * network or virtual filesystem? That is the legacy layout (one CA container
 * writing keys into a hypervisor directory mounted into every consumer) the
 * agent exists to remove, so `doctor` flags it.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';

export interface Mount {
  root: string;
  point: string;
  fstype: string;
  source: string;
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    const f = left?.split(' ') ?? [];
    const r = right?.split(' ') ?? [];
    if (f.length < 5 || r.length < 2) continue;
    mounts.push({
      root: unescape(f[3] as string),
      point: unescape(f[4] as string),
      fstype: r[0] as string,
      source: unescape(r[1] as string),
    });
  }
  return mounts;
}

const SHARED_FS = /^(nfs4?|cifs|smb3|9p|virtiofs|fuse\..*|ceph|glusterfs)$/;

/** Why `path` sits on a mount shared with the host, or undefined. */
export function sharedMountProblem(path: string, mounts: Mount[]): string | undefined {
  const within = (p: string, m: string) => m === '/' || p === m || p.startsWith(`${m}/`);
  // The last matching entry wins: later mounts stack over earlier ones.
  const m = mounts
    .filter((x) => within(path, x.point))
    .sort((a, b) => a.point.length - b.point.length)
    .at(-1);
  if (!m || m.point === '/') return undefined;
  if (m.root !== '/') return `is on a bind mount of ${m.root} (from ${m.source}) at ${m.point}`;
  if (SHARED_FS.test(m.fstype)) return `is on a ${m.fstype} mount from ${m.source} at ${m.point}`;
  return undefined;
}

/** A mount shared from the host and the private keys on it that anyone in the container can read. */
export interface ExposedKeys {
  mount: Mount;
  files: string[];
}

// Names a private key goes by: *.key, key.pem / *-key.pem / *_key.pem, and
// step-ca's secrets (root_ca_key, intermediate_ca_key).
const KEY_NAME = /(\.key|(^|[-_.])key\.pem|_key)$/;
const KERNEL_TREES = /^\/(proc|sys|dev)(\/|$)/;

/**
 * Every mount that is a host directory bind-mounted in (or a network share)
 * and holds private keys others can read: the legacy shared-directory setup,
 * whichever path it is mounted at. Walks each such mount a few levels deep
 * with lstat only (a link is never followed) and stops after `maxEntries`.
 */
export function hostMountsWithReadableKeys(mounts: Mount[], maxDepth = 4, maxEntries = 5000): ExposedKeys[] {
  const found: ExposedKeys[] = [];
  for (const m of mounts) {
    if (m.point === '/' || KERNEL_TREES.test(m.point)) continue;
    if (m.root === '/' && !SHARED_FS.test(m.fstype)) continue;
    const files: string[] = [];
    let budget = maxEntries;
    const walk = (dir: string, depth: number): void => {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return;
      }
      for (const name of names) {
        if (--budget < 0) return;
        const p = join(dir, name);
        let st: Stats;
        try {
          st = lstatSync(p);
        } catch {
          continue;
        }
        if (st.isDirectory() && depth < maxDepth) walk(p, depth + 1);
        else if (st.isFile() && KEY_NAME.test(name) && (st.mode & 0o004) !== 0) files.push(relative(m.point, p));
      }
    };
    let isDir = false;
    try {
      isDir = lstatSync(m.point).isDirectory();
    } catch {
      /* gone since mountinfo was read */
    }
    if (isDir) walk(m.point, 1);
    if (files.length) found.push({ mount: m, files: files.sort() });
  }
  return found;
}
