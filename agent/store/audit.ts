/**
 * The agent's own directories and secrets, audited against the path table
 * (layout.ts): for each, what it should be (kind, mode, owner) and what it
 * is, and with `fix` what was repaired. `doctor` only formats the result;
 * the drift check of every pass (permissions.ts) reads the same list.
 *
 * Paths are checked with lstat and fixed through O_NOFOLLOW descriptors: a
 * link (or a directory not the agent's) where the agent keeps a directory
 * or key is reported and never followed, and nothing below the certificate
 * directory is changed unless every directory above it is the agent's own.
 * So a fix cannot touch a file outside the certificate directory.
 */
import { readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { listOrNone } from '../lib/fs.js';
import { describeError } from '../lib/errors.js';
import {
  AGENT_GID,
  AGENT_UID,
  checkChain,
  closeQuietly,
  describeEntry,
  lstatMaybe,
  openNoFollow,
  setAccessFd,
  type Kind,
} from '../lib/safefs.js';
import { PATHS, SETS_DIR, publishedTarget, type OwnedPath, type Ownership } from './layout.js';

/** One path as the table wants it. */
export interface WantedPath {
  path: string;
  what: string;
  kind: Kind;
  mode: number;
  /** Who must own it; undefined when the configured owner is unknown (not checked); gid -1 leaves the group alone. */
  owner?: { uid: number; gid: number };
}

/** One entry of the table at `path`, under this ownership (undefined: unknown, owners below certDir not checked). */
function wanted(p: OwnedPath, path: string, o: Ownership | undefined): WantedPath {
  const owner =
    p.owner === 'agent' ? { uid: AGENT_UID, gid: -1 } : o ? { uid: AGENT_UID, gid: o.group ?? AGENT_GID } : undefined;
  const kind = p.kind === 'directory' ? 'directory' : 'file';
  return { path, what: p.what, kind, mode: p.mode(o ?? {}), ...(owner ? { owner } : {}) };
}

/** The audited entries of the table: every directory and every secret. */
const AUDITED = Object.values(PATHS).filter((p: OwnedPath) => p.kind === 'directory' || p.secret);

/**
 * Every directory and secret the agent keeps: in `stateDir` (when given),
 * in `certDir`, and in each set named by `setIds`. `o` undefined: the
 * configured owner is unknown, so owners are not checked below certDir.
 */
export function wantedPaths(
  dirs: { stateDir?: string; certDir: string },
  o: Ownership | undefined,
  setIds: string[],
): WantedPath[] {
  const at = (p: OwnedPath, path: string) => wanted(p, path, o);
  const want: WantedPath[] = [];
  const base = { state: dirs.stateDir, certificate: dirs.certDir };
  for (const p of AUDITED.filter((e) => e.in !== 'set')) {
    const dir = base[p.in as 'state' | 'certificate'];
    if (dir !== undefined) want.push(at(p, p.name === '.' ? dir : join(dir, p.name)));
  }
  for (const id of setIds) {
    const set = join(dirs.certDir, SETS_DIR, id);
    for (const p of AUDITED.filter((e) => e.in === 'set')) want.push(at(p, p.name === '.' ? set : join(set, p.name)));
  }
  return want;
}

export type PathAudit = WantedPath & {
  /** Lstat of what is there (the configured directories followed once). */
  st: Stats;
} & (
    | {
        /** Not the agent's: a link, another kind or a hard-linked file; described, never followed or changed. */
        notOurs: string;
      }
    | {
        /** A directory on the way to it is not the agent's. */
        chainProblem: string;
      }
    | {
        /** Open to group or others beyond the wanted mode. */
        loose: boolean;
        /** Not readable by the consumer group the model gives. */
        closed: boolean;
        /** The owner it must have, and whether it has another. */
        uid: number;
        gid: number;
        wrongOwner: boolean;
        /** With fix: the mode and owner it got, or why it could not be fixed. */
        fixed?: { mode: number; owner: boolean };
        fixError?: string;
      }
  );

/** The published key.pem when it is a link somewhere else than the live set's key: never followed. */
export interface ForeignKeyLink {
  path: string;
  found: string;
  want: string;
}

/**
 * Audits (and with `fix`, repairs) every wanted path that exists. Repairs
 * only ever set the wanted group/other bits and the owner: the owner's own
 * bits stay. The caller holds the lock when fixing.
 */
export function auditOwnedPaths(
  dirs: { stateDir: string; certDir: string },
  o: Ownership | undefined,
  fix: boolean,
): { paths: PathAudit[]; foreignKeyLink?: ForeignKeyLink } {
  const dir = dirs.certDir;
  const readUids = o?.legacyUid === undefined ? [AGENT_UID] : [AGENT_UID, o.legacyUid];
  const sets = join(dir, SETS_DIR);
  const setsSt = safeLstat(sets);
  const ids = setsSt?.isDirectory() && readUids.includes(setsSt.uid) ? listOrNone(sets) : [];
  const want = wantedPaths(dirs, o, ids);
  // key.pem in the directory is the agent's link through current; a plain
  // file there (the legacy layout) is audited too; a link elsewhere is not ours.
  const named = join(dir, PATHS.key.name);
  const namedSt = safeLstat(named);
  let foreignKeyLink: ForeignKeyLink | undefined;
  const keyLink = publishedTarget(PATHS.key.name);
  if (namedSt?.isFile()) want.push(wanted(PATHS.key, named, o));
  else if (namedSt?.isSymbolicLink() && readlinkSync(named) !== keyLink) {
    foreignKeyLink = { path: named, found: describeEntry(named, namedSt), want: keyLink };
  }
  const paths: PathAudit[] = [];
  for (const w of want) {
    const audit = auditOne(w, dirs, o, readUids, fix);
    if (audit) paths.push(audit);
  }
  return { paths, ...(foreignKeyLink ? { foreignKeyLink } : {}) };
}

function auditOne(
  w: WantedPath,
  dirs: { stateDir: string; certDir: string },
  o: Ownership | undefined,
  readUids: number[],
  fix: boolean,
): PathAudit | undefined {
  const found = statWanted(w, dirs, readUids);
  if (!found || !('under' in found)) return found;
  const { path, st, under } = found;
  const loose = (st.mode & 0o077 & ~w.mode) !== 0;
  const closed = o?.group !== undefined && under ? (w.mode & 0o070 & ~st.mode) !== 0 : false;
  const uid = w.owner && w.owner.uid >= 0 ? w.owner.uid : st.uid;
  const gid = w.owner && w.owner.gid >= 0 ? w.owner.gid : st.gid;
  const wrongOwner = st.uid !== uid || st.gid !== gid;
  const audit = { ...w, st, loose, closed, uid, gid, wrongOwner };
  if (!fix || (!loose && !closed && !wrongOwner)) return audit;
  return fixOne(audit, path, dirs.certDir, under);
}

/** The path's Stats when it is the kind the agent keeps there and its own; what it is otherwise; undefined when missing. */
function statWanted(
  w: WantedPath,
  dirs: { stateDir: string; certDir: string },
  readUids: number[],
): PathAudit | { path: string; st: Stats; under: boolean } | undefined {
  const dir = dirs.certDir;
  // The configured directory may be a link root made; below it nothing is followed.
  const configured = w.path === dir || w.path === dirs.stateDir;
  const lst = safeLstat(w.path);
  if (!lst) return undefined; // not created yet: renew creates it with the right mode
  const path = configured && lst.isSymbolicLink() ? `${w.path}/.` : w.path;
  const st = path === w.path ? lst : safeLstat(path);
  if (!st) return undefined;
  const under = w.path.startsWith(`${dir}/`);
  const wrongKind = w.kind === 'directory' ? !st.isDirectory() : !st.isFile();
  const linked = w.kind === 'file' && under && st.nlink !== 1;
  if (st.isSymbolicLink() || wrongKind || linked) {
    const found = linked && st.isFile() ? `a file with ${st.nlink} hard links` : describeEntry(w.path, st);
    return { ...w, st, notOurs: found };
  }
  if (under) {
    try {
      checkChain(dir, w.path, readUids);
    } catch (err) {
      return { ...w, st, chainProblem: describeError(err) };
    }
  }
  return { path, st, under };
}

type Judged = WantedPath & {
  st: Stats;
  loose: boolean;
  closed: boolean;
  uid: number;
  gid: number;
  wrongOwner: boolean;
};

/** --fix for one path: through a descriptor of what was audited, only when every directory above is the agent's. */
function fixOne(audit: Judged, path: string, dir: string, under: boolean): PathAudit {
  const { st, uid, gid } = audit;
  let fd: number | undefined;
  try {
    // Every directory above must be the agent's own by now (fixed top-down), so nothing can be swapped in.
    if (under) checkChain(dir, audit.path, [AGENT_UID], true);
    const opened = openNoFollow(path, audit.kind);
    fd = opened.fd;
    if (opened.st.ino !== st.ino || opened.st.dev !== st.dev) throw new Error('it changed while doctor checked it');
    if (audit.kind === 'file' && opened.st.nlink !== 1) throw new Error(`it has ${opened.st.nlink} hard links`);
    // The owner's bits stay; group and other bits become what the model gives.
    const mode = (st.mode & 0o700) | (audit.mode & 0o077);
    setAccessFd(fd, opened.st, { uid, gid, mode });
    return { ...audit, fixed: { mode, owner: audit.wrongOwner } };
  } catch (err) {
    return { ...audit, fixError: describeError(err) };
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

function safeLstat(path: string): Stats | undefined {
  try {
    return lstatMaybe(path);
  } catch {
    return undefined;
  }
}
