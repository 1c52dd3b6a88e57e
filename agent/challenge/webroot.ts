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
 *
 * The document root often belongs to the web server's user, who can rename
 * anything under it at any moment: the token directory is opened once, one
 * component at a time (dir-handle.ts), and every token is created and removed
 * through that open directory, never through its path, so whatever is
 * renamed meanwhile, root writes only into the directory it checked.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { diagnosis } from '../lib/diagnosis.js';
import { CaProtocolError, ChallengeError, StoreError, describeError } from '../lib/errors.js';
import {
  closeDir,
  openRoot,
  removeDirAt,
  removeFileAt,
  sameDir,
  walk,
  writeNewFileAt,
  type DirHandle,
} from './dir-handle.js';
import type { Solver, SolverContext, SolverKind } from './types.js';

/** The webroot solver's own options: the document root the web server serves. */
export interface WebrootOptions {
  webroot: string;
}

const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
/** Where http-01 looks, relative to the document root. */
export const CHALLENGE_PATH = ['.well-known', 'acme-challenge'] as const;
const MODE = 0o755;

/** A directory this solver made, to remove at the end if it is still that directory and empty. */
interface Made {
  parent: DirHandle;
  name: string;
  id: { dev: number; ino: number };
}

export async function openWebrootResponder({ webroot }: WebrootOptions, ctx: SolverContext): Promise<Solver> {
  const made: Made[] = [];
  const held: DirHandle[] = [];
  const tokenDir = openTokenDir(webroot, made, held);
  const root = held[0] as DirHandle;
  const tokenPath = join(webroot, ...CHALLENGE_PATH);
  const written = new Set<string>();
  const remove = (token: string) => {
    removeFileAt(tokenDir, fileName(token));
    written.delete(token);
  };
  // Every write and removal goes through the directory held since the check.
  return {
    type: 'http-01',
    async present({ token, keyAuthorization }) {
      const name = fileName(token);
      checkUnchanged(root, tokenDir, webroot);
      writeNewFileAt(tokenDir, name, keyAuthorization, 0o644);
      written.add(token);
    },
    async cleanup({ token }) {
      remove(token);
    },
    // Loaded only when a refusal needs explaining, as in http-responder.ts.
    selfCheck: async (challenge) =>
      (await import('./self-check.js')).selfCheckHttp01(challenge, {
        ...ctx,
        mode: 'webroot',
        webroot,
        tokenPath: join(tokenPath, fileName(challenge.token)),
      }),
    async close() {
      try {
        for (const token of [...written]) remove(token);
      } finally {
        release(made, held);
      }
    },
  };
}

/** challenge.mode webroot: the site's web server serves the tokens from challenge.webroot. */
export const webrootSolver: SolverKind = {
  open: (settings, ctx) => openWebrootResponder({ webroot: settings.webroot }, ctx),
  // Nothing is created for the operator's site here: the document root must exist.
  precheck: ({ webroot }) =>
    existsSync(webroot)
      ? undefined
      : diagnosis(
          'PROBLEM',
          'challenge',
          `webroot ${webroot} does not exist: create it, and serve it as the ` +
            'document root of the port-80 server (or include snippets/cert-agent-challenge-webroot.conf)',
        ),
  answered: (_settings, name) =>
    `http://${name}/.well-known/acme-challenge/ answers from the webroot, checked from this container as the CA fetches it`,
};

/**
 * Opens `<webroot>/.well-known/acme-challenge`, each directory from the one
 * above, creating what is missing with 0755 whatever the umask. The document
 * root itself is created when missing (the shipped default
 * /var/www/acme-challenge) and kept, since the web server names it; the two
 * below go into `made` when this call creates them. Every handle opened goes
 * into `held` (the root directory first); on failure all are released.
 */
function openTokenDir(webroot: string, made: Made[], held: DirHandle[]): DirHandle {
  const create = {
    mode: MODE,
    made: (parent: DirHandle, name: string, dir: DirHandle) =>
      made.push({ parent, name, id: { dev: dir.dev, ino: dir.ino } }),
  };
  try {
    const root = openRoot();
    held.push(root);
    let dir = walk(root, webroot, { create: { mode: MODE } });
    held.push(dir);
    for (const part of CHALLENGE_PATH) {
      dir = walk(dir, part, { create });
      held.push(dir);
    }
    return dir;
  } catch (err) {
    release(made, held);
    if (err instanceof StoreError || err instanceof ChallengeError) throw err;
    throw new StoreError(`cannot create ${join(webroot, ...CHALLENGE_PATH)} for http-01: ${describeError(err)}`);
  }
}

/** The token comes from the CA; never let it name a path outside the directory. */
function fileName(token: string): string {
  if (!TOKEN.test(token)) {
    const shown = JSON.stringify(token.slice(0, 40));
    throw new CaProtocolError(
      `the CA sent the challenge token ${shown}, which is not base64url; refusing to use it as a file name`,
    );
  }
  return token;
}

/**
 * Refuses, in words, a token directory replaced since it was checked: the
 * write would still land in the directory held, but the web server would
 * not find it there. The path is walked again only to compare; nothing is
 * written through it.
 */
function checkUnchanged(root: DirHandle, tokenDir: DirHandle, webroot: string): void {
  const tokenPath = join(webroot, ...CHALLENGE_PATH);
  let now: DirHandle | undefined;
  let why = `${tokenPath} is another directory than the one checked`;
  try {
    now = walk(root, tokenPath);
  } catch (err) {
    why = describeError(err);
  }
  const same = now !== undefined && sameDir(now, tokenDir);
  closeDir(now);
  if (!same) {
    throw new ChallengeError(
      `refusing to write the token: ${why} (changed since the agent checked it; ` +
        `whoever owns ${webroot} can rename what is under it)`,
    );
  }
}

/** Removes the directories this solver made, deepest first, while they are empty; closes every handle. */
function release(made: Made[], held: DirHandle[]): void {
  let removing = true;
  for (const m of [...made].reverse()) {
    removing &&= removeDirAt(m.parent, m.name, m.id);
    closeDir(m.parent);
  }
  made.length = 0;
  for (const h of held.splice(0)) closeDir(h);
}
