/**
 * File primitives the rest of the agent builds on. Three rules hold
 * everywhere: a secret file has its final mode from the moment it exists
 * (open with the mode and O_EXCL, never wider at any moment); a file or
 * directory meant for other readers gets exactly the mode asked for, whatever
 * the process umask (a service manager's UMask=0077 would otherwise leave
 * proxies and exporters unable to read it); and a file another process may
 * read is replaced by rename(2), never rewritten in place.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { StoreError, describeError } from './errors.js';

/**
 * Creates a new file exclusively with `mode` and writes it fully; fails if it
 * exists. open(2) applies the umask, so the file is created with at most
 * `mode` and then set to exactly `mode` on the descriptor, before any data:
 * it is never wider than asked, and never narrower once written. `durable`
 * false skips the fsync, for files a power cut may lose without harm (the
 * lock: one left empty is stale after 5 s).
 */
export function writeNewFile(path: string, data: string | Uint8Array, mode: number, durable = true): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    setModeOn(fd, mode);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    if (durable) fsyncSync(fd);
  } catch (err) {
    if (fd !== undefined) rmSync(path, { force: true });
    throw new StoreError(`cannot write ${path}: ${describeError(err)}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Replaces `path` atomically: readers see the old or the new content, never
 * a mix. `durable: false` skips the fsyncs, for a record whose loss in a power
 * cut costs nothing (the previous content comes back whole).
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number,
  durable = true,
  /** false: the caller syncs the directory once after several renames in it. */
  syncParent = durable,
): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  writeNewFile(tmp, data, mode, durable);
  try {
    renameSync(tmp, path);
    if (syncParent) syncDir(dirname(path));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new StoreError(`cannot replace ${path}: ${describeError(err)}`, { cause: err });
  }
}

/** Makes the rename durable: without it a power cut can bring back the old name. */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** fchmod only when the umask took bits away: no needless change on filesystems that refuse modes. */
function setModeOn(fd: number, mode: number): void {
  if ((fstatSync(fd).mode & 0o7777) !== mode) fchmodSync(fd, mode);
}

/**
 * Creates a directory (and missing parents), each one it creates with exactly
 * `mode` whatever the umask: 0700 for the agent's private directories, 0755
 * for one a proxy's workers must traverse (a webroot, Traefik's dynamic
 * directory). The mode is set through a descriptor opened without following
 * links on the directory just made. An existing directory is left as it is:
 * its mode is reported by `doctor`, not changed behind the operator's back.
 */
export function ensureDir(dir: string, mode = 0o700): void {
  try {
    const missing: string[] = [];
    for (let p = resolve(dir); !isDirectory(p); p = dirname(p)) {
      missing.unshift(p);
      if (dirname(p) === p) break;
    }
    for (const d of missing) {
      try {
        mkdirSync(d, { mode });
      } catch (err) {
        // Created meanwhile by someone else: theirs, not ours to re-mode.
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      const fd = openSync(d, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        setModeOn(fd, mode);
      } finally {
        closeSync(fd);
      }
    }
    if (!statSync(dir).isDirectory()) throw new Error('exists and is not a directory');
  } catch (err) {
    throw new StoreError(`cannot create directory ${dir}: ${describeError(err)}`, { cause: err });
  }
}

/** ensureDir for the agent's own directories: 0700 unless told otherwise. */
export function ensurePrivateDir(dir: string, mode = 0o700): void {
  ensureDir(dir, mode);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The names in a directory, or none when it cannot be read (gone, not a directory, no access). */
export function listOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
