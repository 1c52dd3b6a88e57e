// The start of bundle/out/cert-agent.cjs. bundle/build.mjs puts the agent's
// code before this as one string (CORE, with BUILD_ID, VERSION and HELP_MAIN)
// and this loader compiles it with V8's code cache, so that every start after
// the first skips most of parsing and compiling the bundle. It works the same
// on every Node the agent supports (the code cache is V8's, not a Node API).
//
// The cache is executable code to V8, so it is only read from and written to
// a directory that nobody but this user can change: CERT_AGENT_CACHE_DIR, or
// code-cache/ in the default state directory /var/lib/cert-agent; created
// 0700 inside a parent that is owned by root or this user and writable by
// nobody else; files 0600, owned by this user, never through a symlink. One
// file per command (each compiles different functions), keyed by the
// bundle's hash and the Node version; V8 also rejects a cache that does not
// fit. Anything unusual: no cache, same behaviour, only slower.
//
// `--version` and the main help are answered before the agent's code is
// compiled at all.
//
// CommonJS on purpose: an ES module entry makes Node start its ESM loader
// first, which costs every command about a quarter of a bare `node -e 0`.
const {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} = require('node:fs');
const { Script } = require('node:vm');

/* global BUILD_ID, VERSION, HELP_MAIN, CORE */
const COMMANDS = ['status', 'check', '__pass', 'run', 'renew', 'metrics', 'doctor', 'enroll', 'bootstrap'];
const first = process.argv[2];

if (first === '--version' || first === 'version') {
  process.stdout.write(`cert-agent ${VERSION}\n`);
} else if (
  first === undefined ||
  first === '--help' ||
  first === '-h' ||
  (first === 'help' && process.argv.length === 3)
) {
  // `help CMD` is the agent's: it knows the commands and their help.
  process.stdout.write(HELP_MAIN);
  process.exitCode = first === undefined ? 64 : 0;
} else {
  start();
}

function start() {
  const filename = __filename;
  const cache = codeCache(COMMANDS.includes(first) ? first : 'other');
  const cachedData = cache?.read();
  const script = new Script(CORE, { filename, ...(cachedData ? { cachedData } : {}) });
  // Written when the process ends, so that it holds what this command compiled while it ran.
  if (cache && (!cachedData || script.cachedDataRejected)) {
    process.once('exit', () => cache.write(script.createCachedData()));
  }
  const module = { exports: {} };
  script.runInThisContext()(require, module, module.exports, filename);
}

function codeCache(command) {
  const uid = typeof process.geteuid === 'function' ? process.geteuid() : -1;
  const dir = (process.env.CERT_AGENT_CACHE_DIR || '/var/lib/cert-agent/code-cache').replace(/\/+$/, '');
  const parent = dir.slice(0, dir.lastIndexOf('/')) || '/';
  if (uid < 0 || !dir.startsWith('/')) return undefined;
  const name = `v8-${BUILD_ID}-${process.version}-${process.arch}-${command}.bin`;
  const path = `${dir}/${name}`;
  try {
    const p = lstatSync(parent);
    if (!p.isDirectory() || (p.uid !== 0 && p.uid !== uid) || p.mode & 0o022) return undefined;
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if (err.code !== 'EEXIST') return undefined;
    }
    const d = lstatSync(dir);
    if (!d.isDirectory() || d.uid !== uid || d.mode & 0o077) return undefined;
  } catch {
    return undefined;
  }
  return {
    read() {
      let fd;
      try {
        fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
        const st = fstatSync(fd);
        return st.isFile() && st.uid === uid && !(st.mode & 0o077) ? readFileSync(fd) : undefined;
      } catch {
        return undefined;
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    },
    write(data) {
      const tmp = `${path}.${process.pid}.tmp`;
      try {
        const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
        const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        try {
          writeSync(fd, data);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, path);
        // Caches of other builds or Node versions are of no use any more, nor the
        // parsed configs earlier versions kept here.
        const mine = `v8-${BUILD_ID}-${process.version}-`;
        for (const f of readdirSync(dir))
          if ((f.startsWith('v8-') && !f.startsWith(mine)) || f.startsWith('config-'))
            rmSync(`${dir}/${f}`, { force: true });
      } catch {
        rmSync(tmp, { force: true });
      }
    },
  };
}
