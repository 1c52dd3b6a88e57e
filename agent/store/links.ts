/**
 * The symbolic links of the certificate directory: `current` and
 * `previous`, which name a set under .sets, and the published names, which
 * go through `current`. A link is read without following it and replaced by
 * rename(2), so its name is never missing; one that is not what the agent
 * makes is refused, never followed.
 */
import { readlinkSync, renameSync, symlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { StoreError, StoreRefusalError, describeError } from '../lib/errors.js';
import { describeEntry, lstatMaybe, unlinkMaybe } from '../lib/safefs.js';
import { SETS_DIR, SET_FILES, type CURRENT_LINK, type PREVIOUS_LINK, type SetFile } from './layout.js';

/** The set id a link target `.sets/<id>` names; undefined for anything else. */
export function setIdOf(target: string | undefined): string | undefined {
  const id = target ? /^\.sets\/([\w.-]+)$/.exec(target)?.[1] : undefined;
  return id && id !== '.' && id !== '..' ? id : undefined;
}

/**
 * The set id `current` or `previous` in `dir` points to. Absent is
 * undefined; a name that is not a link to `.sets/<id>` is refused: it is
 * not ours.
 */
export function setLinkTarget(dir: string, name: typeof CURRENT_LINK | typeof PREVIOUS_LINK): string | undefined {
  const path = join(dir, name);
  const st = lstatMaybe(path);
  if (!st) return undefined;
  const id = setIdOf(st.isSymbolicLink() ? safeReadlink(path) : undefined);
  if (!id) {
    throw new StoreRefusalError(
      `${path} is ${describeEntry(path, st)}, not a link to ${SETS_DIR}/<id>: refusing to follow it; ` +
        'remove it and run cert-agent renew --force',
    );
  }
  return id;
}

/** symlink to a temp name, then rename over: the name is never missing. */
export function replaceWithLink(link: string, target: string): void {
  const tmp = `${link}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    symlinkSync(target, tmp);
    renameSync(tmp, link);
  } catch (err) {
    unlinkMaybe(tmp);
    throw new StoreError(`cannot switch ${link} to ${target}: ${describeError(err)}`);
  }
}

export function isSetFile(name: string): name is SetFile {
  return (SET_FILES as readonly string[]).includes(name);
}

/** The target of a link, or undefined when it is not one (or cannot be read). */
export function safeReadlink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
