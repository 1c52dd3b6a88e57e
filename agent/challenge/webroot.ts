/**
 * http-01 through files the site's web server serves. challenge.webroot is
 * the document root, as certbot's --webroot-path, lego's --http.webroot and
 * acme.sh's -w take it: the key authorization goes to
 * `<webroot>/.well-known/acme-challenge/<token>`, so an existing site with a
 * plain `root /var/www/html;` answers without any extra configuration.
 *
 * Files are world-readable on purpose (the web server's workers must read
 * them and they are public by design), and `.well-known` and
 * `acme-challenge` are made traversable (0755, set explicitly: the service
 * may run under a restrictive umask). Afterwards the agent removes its own
 * token files and the directories it created when they are empty; nothing
 * else in the document root is touched.
 */
import { closeSync, constants, fchmodSync, lstatSync, mkdirSync, openSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '../lib/fs.js';
import { CaProtocolError, ChallengeError, StoreError, describeError } from '../lib/errors.js';
import type { OpenSolver } from './types.js';

const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
/** Where http-01 looks, relative to the document root. */
export const CHALLENGE_PATH = ['.well-known', 'acme-challenge'] as const;

export const openWebrootResponder: OpenSolver = async (opts) => {
  const { webroot } = opts;
  const created: string[] = [];
  let dir = webroot;
  try {
    // The document root itself: created when missing (the shipped default
    // /var/www/acme-challenge) with 0755 whatever the umask, and kept, since
    // the web server names it.
    ensureDir(webroot, 0o755);
    for (const part of CHALLENGE_PATH) {
      dir = join(dir, part);
      if (makeDir(dir)) created.push(dir);
    }
  } catch (err) {
    removeEmpty(created);
    if (err instanceof StoreError || err instanceof ChallengeError) throw err;
    throw new StoreError(`cannot create ${dir} for http-01: ${describeError(err)}`);
  }
  const tokenDir = dir;
  const written = new Set<string>();
  const pathOf = (token: string) => {
    // The token comes from the CA; never let it name a path outside the directory.
    if (!TOKEN.test(token)) {
      const shown = JSON.stringify(token.slice(0, 40));
      throw new CaProtocolError(
        `the CA sent the challenge token ${shown}, which is not base64url; refusing to use it as a file name`,
      );
    }
    return join(tokenDir, token);
  };
  const remove = (token: string) => {
    rmSync(pathOf(token), { force: true });
    written.delete(token);
  };
  return {
    type: 'http-01',
    async present({ token, keyAuthorization }) {
      const path = pathOf(token);
      writeFileAtomic(path, keyAuthorization, 0o644);
      written.add(token);
    },
    async cleanup({ token }) {
      remove(token);
    },
    // Loaded only when a refusal needs explaining, as in http-responder.ts.
    selfCheck: async (challenge) =>
      (await import('./self-check.js')).selfCheckHttp01(challenge, { ...opts, tokenPath: pathOf(challenge.token) }),
    async close() {
      for (const token of [...written]) remove(token);
      removeEmpty(created);
    },
  };
};

/**
 * Makes `dir` a directory the web server can traverse; true when this call
 * created it. An existing
 * directory is kept as it is (its modes are the site's business; the
 * self-check says when they stop the web server). A link is refused unless
 * root or the agent's own user owns it: anyone else could point it
 * elsewhere between our check and our write.
 */
function makeDir(dir: string): boolean {
  const st = lstatOrUndefined(dir);
  if (st) {
    const me = process.getuid?.() ?? 0;
    if (st.isSymbolicLink() && st.uid !== 0 && st.uid !== me) {
      const why = 'another user could point it elsewhere: make it a directory';
      throw new ChallengeError(`${dir} is a symlink owned by uid ${st.uid}; ${why}`);
    }
    if (!(st.isSymbolicLink() ? statOrUndefined(dir)?.isDirectory() : st.isDirectory())) {
      throw new ChallengeError(`${dir} exists and is not a directory: the web server must find a directory there`);
    }
    return false;
  }
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StoreError(`cannot create ${dir} for http-01: ${describeError(err)}`);
  }
  // mkdir(2) applies the umask (the unit's is 0077): set 0755 on a
  // descriptor of the directory just made, never through a link.
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    fchmodSync(fd, 0o755);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Removes the directories this solver created, deepest first, while they are empty. */
function removeEmpty(created: string[]): void {
  for (const dir of [...created].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      return; // not empty (someone else put something there), or gone: leave it
    }
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
