/**
 * Directories held by descriptor, for writing as root below a directory
 * another user owns (a document root that belongs to www-data). That user
 * can rename anything under it at any moment, so a path checked now may lead
 * elsewhere a moment later; a descriptor cannot be redirected. Every path is
 * therefore walked one component at a time from the descriptor of the
 * directory above it, without following links except those nobody else can
 * replace, and every create, unlink and rmdir goes through
 * `/proc/self/fd/<fd>/<name>`: the kernel resolves that from the open
 * directory itself (as openat(2) would, which Node does not offer), never
 * from its path.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { ChallengeError, StoreError } from '../lib/errors.js';

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY;
const MAX_LINKS = 40;

/** An open directory: the descriptor, its identity, and a path for messages only. */
export interface DirHandle {
  readonly fd: number;
  readonly dev: number;
  readonly ino: number;
  /** For messages; never used to reach the directory. */
  readonly path: string;
}

/** `name` inside the directory `fd`, resolved by the kernel from the descriptor. */
function at(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

function handle(fd: number, path: string): DirHandle {
  const st = fstatSync(fd);
  return { fd, dev: st.dev, ino: st.ino, path };
}

export function closeDir(dir: DirHandle | undefined): void {
  if (dir) closeSync(dir.fd);
}

export function sameDir(a: { dev: number; ino: number }, b: { dev: number; ino: number }): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * The root directory, held; first checks that /proc resolves this process's
 * descriptors (a chroot or container without /proc does not), since every
 * write below depends on it.
 */
export function openRoot(): DirHandle {
  const root = handle(openSync('/', DIR_FLAGS), '/');
  let st: Stats | undefined;
  try {
    st = statSync(`/proc/self/fd/${root.fd}`);
  } catch {
    // reported below
  }
  if (!st || !sameDir(st, root)) {
    closeDir(root);
    throw new ChallengeError(
      'challenge.mode webroot needs /proc (the agent writes tokens through /proc/self/fd, so that no other user ' +
        'can redirect the writes), and /proc is not mounted here: mount it, or use challenge.mode standalone or proxy',
    );
  }
  return root;
}

/** Whoever may replace the entry `entry` in the directory `parent`, unless only root and we can. */
function replacerOf(parent: Stats, entry: Stats): number | undefined {
  const me = process.getuid?.() ?? 0;
  const trusted = (uid: number) => uid === 0 || uid === me;
  if (!trusted(entry.uid)) return entry.uid;
  if (!trusted(parent.uid)) return parent.uid;
  // Group or others may write the directory: they may rename its entries, unless it is sticky (0o1000).
  if ((parent.mode & 0o022) !== 0 && (parent.mode & 0o1000) === 0) return -1;
  return undefined;
}

export interface WalkOptions {
  /**
   * Create missing directories with exactly this mode; `made` hears of each
   * one, with a handle of the directory it was made in (the callee's to close).
   */
  create?: { mode: number; made?(parent: DirHandle, name: string, made: DirHandle): void };
}

/**
 * Opens `relative` (components separated by `/`) below `from` without ever
 * resolving a name through a path: each component is looked up in the
 * descriptor of the one before. A symlink is followed only when neither its
 * owner nor the directory holding it lets anyone but root (or this user)
 * replace it; anything else that is not a directory is refused. `from` stays
 * open and the caller's; the result is a new handle.
 */
export function walk(from: DirHandle, relative: string, opts: WalkOptions = {}): DirHandle {
  const pending = relative.split('/').filter((c) => c && c !== '.');
  let cur = { ...from, fd: openSync(at(from.fd, '.'), DIR_FLAGS) };
  let links = 0;
  try {
    while (pending.length) {
      const name = pending.shift() as string;
      const shown = join(cur.path, name);
      let st = lstatOrUndefined(at(cur.fd, name));
      if (!st && opts.create) {
        st = makeDir(cur, name, opts.create);
      }
      if (!st) throw new ChallengeError(`${shown} does not exist`);
      if (st.isSymbolicLink()) {
        const replacer = replacerOf(fstatSync(cur.fd), st);
        if (replacer !== undefined) throw untrustedLink(shown, cur.path, st, replacer);
        if (++links > MAX_LINKS) throw new ChallengeError(`${shown}: too many levels of symbolic links`);
        const target = readlinkSync(at(cur.fd, name));
        pending.unshift(...target.split('/').filter((c) => c && c !== '.'));
        if (target.startsWith('/')) cur = swap(cur, handle(openSync('/', DIR_FLAGS), '/'));
        continue;
      }
      if (!st.isDirectory()) {
        throw new ChallengeError(`${shown} exists and is not a directory: the web server must find a directory there`);
      }
      cur = swap(cur, openChild(cur, name, shown, st));
    }
    return cur;
  } catch (err) {
    closeDir(cur);
    if (err instanceof ChallengeError || err instanceof StoreError) throw err;
    throw new ChallengeError(`cannot open ${join(from.path, relative)} for http-01: ${code(err)}`);
  }
}

function swap(old: DirHandle, next: DirHandle): DirHandle {
  closeDir(old);
  return next;
}

function untrustedLink(shown: string, dir: string, st: Stats, replacer: number): ChallengeError {
  const who = replacer === -1 ? 'group or others' : `uid ${replacer}`;
  const why =
    replacer === st.uid ? `is a symlink owned by uid ${st.uid}` : `is a symlink in ${dir}, which ${who} can write`;
  return new ChallengeError(
    `${shown} ${why}; another user could point it elsewhere between the check and the write: make it a directory`,
  );
}

/** Opens the directory `name` of `dir`, refusing a link put there since it was looked at, or another directory. */
function openChild(dir: DirHandle, name: string, shown: string, seen: Stats): DirHandle {
  let fd: number;
  try {
    fd = openSync(at(dir.fd, name), DIR_FLAGS | (name === '..' ? 0 : constants.O_NOFOLLOW));
  } catch (err) {
    throw new ChallengeError(`${shown} changed while it was being opened (${code(err)}); try again`);
  }
  const opened = handle(fd, shown);
  if (name !== '..' && !sameDir(opened, seen)) {
    closeDir(opened);
    throw new ChallengeError(`${shown} was replaced while it was being opened; try again`);
  }
  return opened;
}

/** mkdir `name` in `dir` with exactly `mode`; its lstat, or undefined when someone else made it first. */
function makeDir(dir: DirHandle, name: string, create: NonNullable<WalkOptions['create']>): Stats | undefined {
  const shown = join(dir.path, name);
  try {
    mkdirSync(at(dir.fd, name), { mode: create.mode });
  } catch (err) {
    if (code(err) === 'EEXIST') return lstatOrUndefined(at(dir.fd, name));
    throw new StoreError(`cannot create ${shown} for http-01: ${code(err)}`);
  }
  // mkdir(2) applies the umask (the unit's is 0077): set the mode on a
  // descriptor of the directory, once it is certain to be the one just made.
  const made = openChild(dir, name, shown, lstatSync(at(dir.fd, name)));
  const st = fstatSync(made.fd);
  if (st.uid !== (process.getuid?.() ?? 0)) {
    closeDir(made);
    throw new ChallengeError(`${shown} was replaced by uid ${st.uid}'s directory just after it was created; try again`);
  }
  if ((st.mode & 0o7777) !== create.mode) fchmodSync(made.fd, create.mode);
  create.made?.(handle(openSync(at(dir.fd, '.'), DIR_FLAGS), dir.path), name, made);
  closeDir(made);
  return lstatSync(at(dir.fd, name));
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Creates `name` in `dir` with exactly `mode` and `data`, never through a
 * link and never over an existing file (one left by a crash is removed
 * first: an unlink in `dir` removes only that name there).
 */
export function writeNewFileAt(dir: DirHandle, name: string, data: string, mode: number): void {
  const path = at(dir.fd, name);
  removeFileAt(dir, name);
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    if ((fstatSync(fd).mode & 0o7777) !== mode) fchmodSync(fd, mode);
    const buf = Buffer.from(data);
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
  } catch (err) {
    if (fd !== undefined) removeFileAt(dir, name);
    throw new StoreError(`cannot write ${join(dir.path, name)}: ${code(err)}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Removes the name `name` from `dir` (a link is removed, not followed); nothing when it is gone. */
export function removeFileAt(dir: DirHandle, name: string): void {
  try {
    unlinkSync(at(dir.fd, name));
  } catch (err) {
    if (code(err) !== 'ENOENT') throw new StoreError(`cannot remove ${join(dir.path, name)}: ${code(err)}`);
  }
}

/** Removes the empty directory `name` from `parent` when it is still `made`; false when it is not, or not empty. */
export function removeDirAt(parent: DirHandle, name: string, made: { dev: number; ino: number }): boolean {
  try {
    const st = lstatSync(at(parent.fd, name));
    if (!st.isDirectory() || !sameDir(st, made)) return false;
    rmdirSync(at(parent.fd, name));
    return true;
  } catch {
    return false; // not empty (someone else put something there), or gone: leave it
  }
}
