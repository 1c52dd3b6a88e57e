/**
 * Users and groups by name or id: the one reader of /etc/passwd and
 * /etc/group. The configured owner and group of the certificate files, the
 * web server's user the challenge self-check reasons about, and the names
 * `doctor` prints all resolve here. Read on every call (a daemon runs for
 * months while users come and go), parsed again only when the text
 * changed; `etc` is only for tests.
 */
import { join } from 'node:path';
import { StoreError } from './errors.js';
import { readIfExists } from './fs.js';

export interface UserEntry {
  name: string;
  uid: number;
  /** The primary group. */
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMERIC = /^\d+$/;

/** The last parse of each file, reused while its text is the same (a pass resolves owners per certificate). */
const parsed = new Map<string, { text: string; rows: string[][] }>();

function lines(etc: string, file: 'passwd' | 'group'): string[][] {
  const path = join(etc, file);
  const text = readIfExists(path) ?? '';
  const last = parsed.get(path);
  if (last?.text === text) return last.rows;
  const rows = text.split('\n').map((l) => l.split(':'));
  parsed.set(path, { text, rows });
  return rows;
}

function users(etc: string): UserEntry[] {
  const out: UserEntry[] = [];
  for (const [name, , uid, gid] of lines(etc, 'passwd')) {
    if (!name || !uid || !gid || !NUMERIC.test(uid) || !NUMERIC.test(gid)) continue;
    out.push({ name, uid: Number(uid), gid: Number(gid) });
  }
  return out;
}

function groups(etc: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const [name, , gid, members] of lines(etc, 'group')) {
    if (!name || !gid || !NUMERIC.test(gid)) continue;
    out.push({ name, gid: Number(gid), members: (members ?? '').split(',').filter(Boolean) });
  }
  return out;
}

/** The passwd entry of a user name, or else of a numeric uid; undefined when there is none. */
export function findUser(nameOrId: string, etc = '/etc'): UserEntry | undefined {
  const all = users(etc);
  return (
    all.find((u) => u.name === nameOrId) ??
    (NUMERIC.test(nameOrId) ? all.find((u) => u.uid === Number(nameOrId)) : undefined)
  );
}

/** The gids a user's processes carry: the primary group and every group listing the user as a member. */
export function groupIdsOf(user: UserEntry, etc = '/etc'): number[] {
  return [
    user.gid,
    ...groups(etc)
      .filter((g) => g.members.includes(user.name))
      .map((g) => g.gid),
  ];
}

/** A user or group name (or numeric id) as an id; an unknown name is a StoreError. */
export function resolveId(name: string, kind: 'user' | 'group', etc = '/etc'): number {
  if (NUMERIC.test(name)) return Number(name);
  const found = kind === 'user' ? users(etc).find((u) => u.name === name) : groups(etc).find((g) => g.name === name);
  if (found) return kind === 'user' ? (found as UserEntry).uid : (found as GroupEntry).gid;
  throw new StoreError(
    `${kind} ${JSON.stringify(name)} does not exist in ${join(etc, kind === 'user' ? 'passwd' : 'group')}`,
  );
}

/** The name of a uid or gid for a message, or the number when it has none. */
export function nameOfId(id: number, kind: 'user' | 'group', etc = '/etc'): string {
  const all: { name: string; id: number }[] =
    kind === 'user'
      ? users(etc).map((u) => ({ name: u.name, id: u.uid }))
      : groups(etc).map((g) => ({ name: g.name, id: g.gid }));
  return all.find((e) => e.id === id)?.name ?? String(id);
}
