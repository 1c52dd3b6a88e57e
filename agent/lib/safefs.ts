/**
 * File operations that never follow a link. The agent runs as root and works
 * in a directory that consumers read; a name there that is not what the agent
 * made (a symbolic link, a hard link, a directory owned by someone else) must
 * be refused, not followed. So every chown, chmod, read and delete here acts
 * on a descriptor opened with O_NOFOLLOW (fchown/fchmod on that descriptor),
 * or on a name checked with lstat inside directories that only the agent can
 * change. The store (sets.ts, audit.ts, permissions.ts) goes through these.
 *
 * Node has no openat/unlinkat/fchownat, so a path is still resolved from the
 * start each time. That is safe only when every directory on the way is one
 * nobody but the agent's uid can change: `checkChain` verifies exactly that
 * (real directories, owned by the agent, not writable by group or others)
 * before a delete, and the owner/mode changes go top-down, so a directory is
 * the agent's own before anything inside it is touched. The directories above
 * the configured certificate and state directories are checked when the
 * configuration is loaded (config/path-safety.ts, sshd's StrictModes rule).
 *
 * What remains: a process with the agent's own uid can still race these
 * checks (it is root already). In a directory still owned by a consumer (an
 * install from before the agent kept them), a read by `status` before the
 * next pass takes it back can be redirected between the check and the open;
 * it only parses the content and writes nothing. A file with more than one
 * hard link is never chowned or chmodded (fs.protected_hardlinks normally
 * stops a consumer from making one to root's files, this does not rely on it).
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { StoreError, StoreRefusalError, describeError } from './errors.js';

export const AGENT_UID = process.getuid?.() ?? 0;
export const AGENT_GID = process.getgid?.() ?? 0;

export type Kind = 'directory' | 'file';

export const octal = (m: number) => `0${(m & 0o777).toString(8).padStart(3, '0')}`;

/** lstat, or undefined when the name does not exist. */
export function lstatMaybe(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new StoreError(`cannot inspect ${path}: ${describeError(err)}`, { cause: err });
  }
}

/** What a name is, for messages: "a symbolic link to /etc", "a directory owned by uid 65534". */
export function describeEntry(path: string, st: Stats): string {
  if (st.isSymbolicLink()) {
    let target = '?';
    try {
      target = readlinkSync(path);
    } catch {
      // gone meanwhile: the kind is enough
    }
    return `a symbolic link to ${target}`;
  }
  const kind = st.isDirectory() ? 'a directory' : st.isFile() ? 'a file' : 'a special file';
  return `${kind} owned by uid ${st.uid} (mode ${octal(st.mode)})`;
}

/**
 * Opens `path` without following a link in its last component and checks
 * its kind. A link gives a StoreError naming it; O_NONBLOCK keeps a planted
 * FIFO from hanging the agent.
 */
export function openNoFollow(path: string, kind: Kind): { fd: number; st: Stats } {
  const dir = kind === 'directory' ? constants.O_DIRECTORY : 0;
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | dir;
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const st = code === 'ELOOP' || code === 'ENOTDIR' ? lstatMaybe(path) : undefined;
    if (st) {
      const what = describeEntry(path, st);
      throw new StoreRefusalError(`${path} is ${what}, not a ${kind} the agent made: refusing to follow it`);
    }
    throw new StoreError(`cannot open ${path}: ${describeError(err)}`, { cause: err });
  }
  const st = fstatSync(fd);
  if (kind === 'file' ? !st.isFile() : !st.isDirectory()) {
    closeSync(fd);
    throw new StoreRefusalError(`${path} is ${describeEntry(path, st)}, not a ${kind}: refusing to touch it`);
  }
  return { fd, st };
}

export interface Access {
  /** -1 keeps the owner. */
  uid: number;
  /** -1 keeps the group. */
  gid: number;
  mode: number;
}

/**
 * Gives the object open on `fd` the owner, group and mode in `want`. The
 * mode is first narrowed to what both the old and the new mode allow, so
 * a new group never sees a mode meant for the old one, and no one gains
 * access before the owner is right.
 */
export function setAccessFd(fd: number, st: Stats, want: Access): void {
  const narrow = st.mode & want.mode & 0o7777;
  if ((st.mode & 0o7777) !== narrow) fchmodSync(fd, narrow);
  const owner = (want.uid >= 0 && st.uid !== want.uid) || (want.gid >= 0 && st.gid !== want.gid);
  if (owner) fchownSync(fd, want.uid, want.gid);
  if (narrow !== (want.mode & 0o7777)) fchmodSync(fd, want.mode);
}

/**
 * Sets owner/group/mode on `path` itself (never through a link). A file
 * with more than one hard link is refused: it may be another file of the
 * system linked in. `expect` (from an earlier lstat) must still be the
 * same object.
 */
export function setAccess(path: string, kind: Kind, want: Access, expect?: Stats): void {
  const { fd, st } = openNoFollow(path, kind);
  try {
    if (expect && (st.ino !== expect.ino || st.dev !== expect.dev)) {
      throw new StoreRefusalError(`${path} changed while the agent was checking it: refusing to touch it`);
    }
    if (kind === 'file' && st.nlink !== 1) {
      const why = 'it may be another file of the system, refusing to touch it';
      throw new StoreRefusalError(`${path} has ${st.nlink} hard links: ${why}`);
    }
    setAccessFd(fd, st, want);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot set owner/mode of ${path}: ${describeError(err)}`, { cause: err });
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `path` exclusively (O_EXCL, O_NOFOLLOW) with mode 0600, then sets
 * the group and the final mode on that descriptor before writing: a key is
 * never readable by anyone else at any moment, and the umask cannot change
 * the final mode.
 */
export function createFile(path: string, data: string | Uint8Array, want: { gid: number; mode: number }): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    if (want.gid >= 0) fchownSync(fd, -1, want.gid);
    fchmodSync(fd, want.mode);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    fsyncSync(fd);
  } catch (err) {
    if (fd !== undefined) unlinkMaybe(path);
    throw new StoreError(`cannot write ${path}: ${describeError(err)}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Reads a regular file without following a link; refuses anything else or anything over `limit` bytes. */
export function readNoFollow(path: string, limit = 1 << 20): string {
  const { fd, st } = openNoFollow(path, 'file');
  try {
    if (st.size > limit) {
      throw new StoreError(`${path} is ${st.size} bytes, more than the ${limit} a certificate file can be`);
    }
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that every directory from `base` (excluded: trusted as configured)
 * down to the parent of `path` is a real directory owned by one of `uids`,
 * and, with `strict`, not writable by group or others. Throws a StoreError
 * naming the first one that is not.
 */
export function checkChain(base: string, path: string, uids: number[], strict = false): void {
  const rel = relative(base, dirname(path));
  if (rel.startsWith('..') || rel.startsWith(sep)) {
    throw new StoreRefusalError(`${path} is outside ${base}: refusing to touch it`);
  }
  let p = base;
  for (const part of rel ? rel.split(sep) : []) {
    p = join(p, part);
    const st = lstatMaybe(p);
    if (!st) throw new StoreError(`${p} does not exist`);
    checkOwnDir(p, st, uids, strict);
  }
}

/** A real directory (not a link) owned by one of `uids`; with `strict` also not writable by group or others. */
export function checkOwnDir(path: string, st: Stats, uids: number[], strict = false): void {
  const what = describeEntry(path, st);
  if (!st.isDirectory() || st.isSymbolicLink()) {
    throw new StoreRefusalError(`${path} is ${what}, not a directory the agent made: refusing to follow it; remove it`);
  }
  if (!uids.includes(st.uid)) {
    throw new StoreRefusalError(
      `${path} is ${what}, not the agent's (uid ${AGENT_UID}): refusing to use it; ` +
        `remove it or chown it to uid ${AGENT_UID}`,
    );
  }
  if (strict && st.mode & 0o022) {
    const mode = octal(st.mode);
    throw new StoreRefusalError(
      `${path} is writable by group or others (mode ${mode}): refusing to delete anything in it`,
    );
  }
}

/**
 * Deletes `path` (a directory tree the agent made) without following links:
 * a link or file is unlinked as a name, a directory is entered only when it
 * is a real directory owned by the agent and not writable by group or
 * others. Anything else is left where it is; the paths left are returned.
 * The caller has checked the chain of directories above `path`.
 */
export function removeOwnTree(path: string): string[] {
  const st = lstatMaybe(path);
  if (!st) return [];
  if (!st.isDirectory()) {
    unlinkMaybe(path);
    return [];
  }
  if (st.uid !== AGENT_UID || st.mode & 0o022) return [path];
  const left: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch (err) {
    throw new StoreError(`cannot list ${path}: ${describeError(err)}`, { cause: err });
  }
  for (const e of entries) left.push(...removeOwnTree(join(path, e)));
  if (left.length) return left;
  try {
    rmdirSync(path);
  } catch (err) {
    throw new StoreError(`cannot remove ${path}: ${describeError(err)}`, { cause: err });
  }
  return [];
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** unlink(2) a name (a link itself, never its target); a missing name is fine. */
export function unlinkMaybe(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StoreError(`cannot remove ${path}: ${describeError(err)}`, { cause: err });
  }
}
