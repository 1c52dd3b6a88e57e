/**
 * http-01 through files the proxy serves: `<webroot>/<token>` holds the key
 * authorization. The proxy maps /.well-known/acme-challenge/ onto the
 * directory (see packaging/nginx). Files are world-readable on purpose — the
 * proxy's workers must read them and they are public by design — whatever
 * the umask the agent runs under, and are removed when the order is done.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '../lib/fs.js';
import { CaProtocolError, StoreError, describeError } from '../lib/errors.js';
import type { OpenSolver } from './types.js';

const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

export const openWebrootResponder: OpenSolver = async ({ webroot }) => {
  try {
    // 0755 exactly, whatever the umask: the proxy's workers traverse it.
    ensureDir(webroot, 0o755);
  } catch (err) {
    throw new StoreError(`cannot create challenge.webroot ${webroot}: ${describeError(err)}`);
  }
  const written = new Set<string>();
  const pathOf = (token: string) => {
    // The token comes from the CA; never let it name a path outside webroot.
    if (!TOKEN.test(token)) throw new CaProtocolError(`the CA sent the challenge token ${JSON.stringify(token.slice(0, 40))}, which is not base64url; refusing to use it as a file name`);
    return join(webroot, token);
  };
  const remove = (token: string) => {
    rmSync(pathOf(token), { force: true });
    written.delete(token);
  };
  return {
    type: 'http-01',
    async present({ token, keyAuthorization }) {
      writeFileAtomic(pathOf(token), keyAuthorization, 0o644);
      written.add(token);
    },
    async cleanup({ token }) {
      remove(token);
    },
    async close() {
      for (const token of [...written]) remove(token);
    },
  };
};
