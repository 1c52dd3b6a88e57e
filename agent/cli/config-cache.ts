/**
 * The parsed-config cache of the commands run often (`status`, `metrics`, `renew`, and
 * `check` every few minutes in timer mode): loading the YAML parser and
 * validating the file costs more than the rest of `status`. The parsed
 * configuration is kept, as JSON, next to the code cache (bundle/loader.cjs:
 * CERT_AGENT_CACHE_DIR, or /var/lib/cert-agent/code-cache), under the same
 * rules: a directory only this user can change, files 0600, no symlinks.
 *
 * An entry is used only for the same config file with the same device,
 * inode, size and mtime and the same SHA-256 of the bytes read now, by the
 * same build of cert-agent (programId: a rebuild with the same version may
 * validate differently); anything else parses the file again. The paths
 * it names are checked against the file system on every load, cached or not.
 * A file that does not parse is never cached (the error comes from the parser).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/config.js';
import { checkPathSafety } from '../config/path-safety.js';

/** Up to this size the program file is hashed (the bundle, ~0.3 MiB: ~0.5 ms); beyond it, its identity on disk. */
const MAX_HASHED_PROGRAM = 4 * 2 ** 20;

interface Entry {
  program: string;
  path: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  sha256: string;
  config: Config;
}

/** `command` names the command in the hint when the file is not readable by this user. */
export async function loadConfigCached(path: string, env: NodeJS.ProcessEnv, command?: string): Promise<Config> {
  let text: Buffer;
  let key: Omit<Entry, 'config'>;
  try {
    const fd = openSync(path, constants.O_RDONLY);
    try {
      const st = fstatSync(fd);
      text = readFileSync(fd);
      const sha256 = createHash('sha256').update(text).digest('hex');
      const program = programId();
      if (!program) throw new Error('the running program cannot be identified');
      key = {
        program,
        path: resolve(path),
        dev: st.dev,
        ino: st.ino,
        size: st.size,
        mtimeMs: st.mtimeMs,
        sha256,
      };
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not readable (the parser's loader says why, in its words), or no build to key the cache by.
    return (await import('../config/config.js')).loadConfig(path, command);
  }
  const dir = cacheDir(env);
  const file = dir && `${dir}/config-${createHash('sha256').update(key.path).digest('hex').slice(0, 16)}.json`;
  const hit = file ? readEntry(file) : undefined;
  if (hit && sameKey(hit, key)) {
    checkPathSafety(path, hit.config);
    return hit.config;
  }
  const { parseConfig } = await import('../config/config.js');
  const config = parseConfig(text.toString('utf8'), path);
  checkPathSafety(path, config);
  if (file) writeEntry(file, { ...key, config });
  return config;
}

function sameKey(a: Omit<Entry, 'config'>, b: Omit<Entry, 'config'>): boolean {
  return (['program', 'path', 'dev', 'ino', 'size', 'mtimeMs', 'sha256'] as const).every((k) => a[k] === b[k]);
}

/**
 * The build that runs: the SHA-256 of the program file (the bundle; in the
 * bundle `import.meta.url` is its path), or for a file too large to hash at
 * every start (the single executable, ~120 MB) its device, inode, size,
 * mtime and ctime, which any replacement or write changes. Undefined when
 * the file cannot be read: then nothing is cached.
 */
function programId(): string | undefined {
  const self = import.meta.url;
  let fd: number | undefined;
  try {
    fd = openSync(self.startsWith('file:') ? fileURLToPath(self) : self, constants.O_RDONLY);
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    if (st.size <= MAX_HASHED_PROGRAM) return `sha256:${createHash('sha256').update(readFileSync(fd)).digest('hex')}`;
    return `file:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The cache directory if it is safe: 0700, owned by this user, in a parent only root or this user can change. */
function cacheDir(env: NodeJS.ProcessEnv): string | undefined {
  const uid = process.geteuid?.();
  const dir = (env.CERT_AGENT_CACHE_DIR || '/var/lib/cert-agent/code-cache').replace(/\/+$/, '');
  if (uid === undefined || !dir.startsWith('/')) return undefined;
  try {
    const parent = lstatSync(dir.slice(0, dir.lastIndexOf('/')) || '/');
    if (!parent.isDirectory() || (parent.uid !== 0 && parent.uid !== uid) || parent.mode & 0o022) return undefined;
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
    }
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === uid && !(st.mode & 0o077) ? dir : undefined;
  } catch {
    return undefined;
  }
}

function readEntry(file: string): Entry | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== process.geteuid?.() || st.mode & 0o077) return undefined;
    return JSON.parse(readFileSync(fd, 'utf8')) as Entry;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Best effort: a cache that cannot be written only costs the next start the parse. */
function writeEntry(file: string, entry: Entry): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, JSON.stringify(entry));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true });
  }
}
