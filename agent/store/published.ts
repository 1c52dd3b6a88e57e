/**
 * The names consumers read (key.pem, cert.pem, … in certificate.dir) are
 * what counts: a set that is fine behind a missing cert.pem still stops
 * nginx at its next start. This inspects each published name without
 * following anything — it must be a link to `current/<name>`, and the file
 * behind it must exist — so `status`, `doctor` and every pass judge the
 * same thing and say it in the same words. The pass repairs what is found
 * (CertStore.relink) under the lock.
 */
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { CURRENT_LINK, SETS_DIR, SET_FILES, publishedTarget, type SetFile } from './layout.js';
import { safeReadlink, setIdOf } from './links.js';

export type PublishedState = 'ok' | 'missing' | 'dangling' | 'regular-file' | 'elsewhere' | 'not-a-link';

export interface PublishedName {
  name: SetFile;
  path: string;
  state: PublishedState;
  /** What was found, for the operator; null when ok. */
  detail: string | null;
}

/** Every published name with its state, in SET_FILES order. */
export function inspectPublishedNames(dir: string): PublishedName[] {
  const setId = setIdOf(safeReadlink(join(dir, CURRENT_LINK)));
  return SET_FILES.map((name) => {
    const path = join(dir, name);
    const want = publishedTarget(name);
    const at = (state: PublishedState, detail: string | null): PublishedName => ({ name, path, state, detail });
    const st = lstatOrUndefined(path);
    if (!st) return at('missing', `${path} is missing`);
    if (st.isFile()) {
      const what = `${path} is a regular file (copied over the link?), not the link to ${want}`;
      return at('regular-file', `${what}: consumers read that copy, not the live set`);
    }
    if (!st.isSymbolicLink()) {
      return at('not-a-link', `${path} is ${st.isDirectory() ? 'a directory' : 'not a file'}, not the link to ${want}`);
    }
    const target = safeReadlink(path);
    if (target !== want) {
      const where = target ?? '(unreadable)';
      return at('elsewhere', `${path} points to ${where}, outside the agent's live set (want ${want})`);
    }
    // The link is right; the file behind it must exist in the live set.
    const behind = setId ? lstatOrUndefined(join(dir, SETS_DIR, setId, name)) : undefined;
    if (!behind?.isFile()) return at('dangling', `${path} -> ${want} is dangling: the live set has no ${name}`);
    return at('ok', null);
  });
}

/** Only the names that are not right. */
export function publishedProblems(dir: string): PublishedName[] {
  return inspectPublishedNames(dir).filter((p) => p.state !== 'ok');
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
