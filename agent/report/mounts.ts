/**
 * /proc/self/mountinfo, read for one question: is a directory on a mount the
 * host shares into this container — a bind mount of a host directory, or a
 * network or virtual filesystem? That is the legacy layout (one CA container
 * writing keys into a hypervisor directory mounted into every consumer) the
 * agent exists to remove, so `doctor` flags it.
 */
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
