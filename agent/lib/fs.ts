/**
 * File primitives the rest of the agent builds on. Two rules hold everywhere:
 * a secret file has its final mode from the moment it exists (open with the
 * mode and O_EXCL, never chmod afterwards), and a file another process may
 * read is replaced by rename(2), never rewritten in place.
 */
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { StoreError, describeError } from './errors.js';

/** Creates a new file exclusively with `mode` and writes it fully; fails if it exists. */
export function writeNewFile(path: string, data: string | Uint8Array, mode: number): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    fsyncSync(fd);
  } catch (err) {
    if (fd !== undefined) rmSync(path, { force: true });
    throw new StoreError(`cannot write ${path}: ${describeError(err)}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Replaces `path` atomically: readers see the old or the new content, never a mix. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  writeNewFile(tmp, data, mode);
  try {
    renameSync(tmp, path);
    syncDir(dirname(path));
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

/**
 * Creates a private directory (and missing parents) with `mode`. An existing
 * directory is left as it is: its mode is reported by `doctor`, not changed
 * behind the operator's back.
 */
export function ensurePrivateDir(dir: string, mode = 0o700): void {
  try {
    mkdirSync(dir, { recursive: true, mode });
    if (!statSync(dir).isDirectory()) throw new Error('exists and is not a directory');
  } catch (err) {
    throw new StoreError(`cannot create directory ${dir}: ${describeError(err)}`, { cause: err });
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

/** Resolves a user or group name (or numeric id) through /etc/passwd or /etc/group. */
export function resolveId(name: string, kind: 'user' | 'group'): number {
  if (/^\d+$/.test(name)) return Number(name);
  const file = kind === 'user' ? '/etc/passwd' : '/etc/group';
  for (const line of (readIfExists(file) ?? '').split('\n')) {
    const [entry, , id] = line.split(':');
    if (entry === name && id !== undefined && /^\d+$/.test(id)) return Number(id);
  }
  throw new StoreError(`${kind} ${JSON.stringify(name)} does not exist in ${file}`);
}
