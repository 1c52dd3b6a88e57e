/**
 * `doctor`: modes and owners of the agent's own paths, checked with lstat
 * and fixed (`--fix`) through O_NOFOLLOW descriptors: a link (or a
 * directory not the agent's) where the agent keeps a directory or key is
 * reported and never followed, and nothing below the certificate directory
 * is changed unless every directory above it is the agent's own. So --fix
 * cannot touch a file outside the certificate directory.
 */
import { existsSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/config.js';
import { describeError } from '../../lib/errors.js';
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
} from '../../lib/safefs.js';
import { SETS_DIR } from '../../store/layout.js';
import { acquireLockWaiting } from '../../store/lock.js';
import type { Ownership } from '../../store/sets.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

/** How long `doctor --fix` waits for a renewal pass in flight before fixing nothing. */
const FIX_LOCK_WAIT_MS = 30_000;

/**
 * `--fix` changes modes and owners in the state and certificate directories,
 * so it holds the lock like every other writer there; without --fix, or when
 * no state directory exists yet (no agent has run), it only reads.
 */
export async function checkPermissions({ config, owner, fix }: DoctorContext): Promise<Diagnosis[]> {
  if (!fix || !existsSync(config.stateDir)) return auditPermissions(config, owner, fix);
  let release: (() => void) | undefined;
  try {
    release = await acquireLockWaiting(config.stateDir, FIX_LOCK_WAIT_MS);
  } catch (err) {
    const todo = 'nothing was fixed; run cert-agent doctor --fix again';
    return [diagnosis('PROBLEM', 'lock', `${describeError(err)}: ${todo}`), ...auditPermissions(config, owner, false)];
  }
  try {
    return auditPermissions(config, owner, fix);
  } finally {
    release();
  }
}

interface Expect {
  path: string;
  what: string;
  kind: Kind;
  mode: number;
  owner?: { uid: number; gid: number };
}

/** What every path is judged against: the certificate directory, the uids that may own what is under it. */
interface Audit {
  config: Config;
  /** The consumer group, when the certificate is shared with one. */
  group: number | undefined;
  readUids: number[];
  fix: boolean;
}

function auditPermissions(config: Config, owner: Ownership | undefined, fix: boolean): Diagnosis[] {
  const o = owner ?? {};
  const audit: Audit = {
    config,
    group: o.group,
    readUids: o.legacyUid === undefined ? [AGENT_UID] : [AGENT_UID, o.legacyUid],
    fix,
  };
  const lines: Diagnosis[] = [];
  let good = 0;
  for (const w of expectedPaths(config, owner, audit.readUids, lines)) {
    const line = auditPath(w, audit);
    if (line === 'good') good++;
    else if (line) lines.push(line);
  }
  if (good) lines.push(diagnosis('ok', 'permissions', `${good} path(s) private and owned as configured`));
  return lines;
}

/** The agent's paths with the mode and owner the ownership model gives them; a foreign key.pem link goes to `lines`. */
function expectedPaths(config: Config, owner: Ownership | undefined, readUids: number[], lines: Diagnosis[]): Expect[] {
  const dir = config.certificate.dir;
  const o = owner ?? {};
  const dirMode = o.group === undefined ? 0o700 : 0o750;
  const keyMode = o.group === undefined ? 0o600 : 0o640;
  const certOwner = owner ? { uid: AGENT_UID, gid: o.group ?? AGENT_GID } : undefined;
  const root = { uid: AGENT_UID, gid: -1 };
  const sets = join(dir, SETS_DIR);
  const want: Expect[] = [
    { path: config.stateDir, what: 'state directory', kind: 'directory', mode: 0o700, owner: root },
    { path: join(config.stateDir, 'account.key'), what: 'ACME account key', kind: 'file', mode: 0o600, owner: root },
    { path: dir, what: 'certificate directory', kind: 'directory', mode: dirMode, owner: certOwner },
    { path: sets, what: 'certificate sets directory', kind: 'directory', mode: dirMode, owner: certOwner },
  ];
  const key = (path: string): Expect => ({ path, what: 'private key', kind: 'file', mode: keyMode, owner: certOwner });
  const setsSt = safeLstat(sets);
  if (setsSt?.isDirectory() && readUids.includes(setsSt.uid)) {
    for (const id of safeList(sets)) {
      want.push({ path: join(sets, id), what: 'certificate set', kind: 'directory', mode: dirMode, owner: certOwner });
      want.push(key(join(sets, id, 'key.pem')), key(join(sets, id, 'combined.pem')));
    }
  }
  // key.pem in the directory is the agent's link through current; a plain
  // file there (the legacy layout) is audited too; a link elsewhere is not ours.
  const named = join(dir, 'key.pem');
  const namedSt = safeLstat(named);
  if (namedSt?.isFile()) want.push(key(named));
  else if (namedSt?.isSymbolicLink() && readlinkSync(named) !== 'current/key.pem') {
    const what = describeEntry(named, namedSt);
    const todo = "run cert-agent renew --force (it puts the agent's link back)";
    const why = "not the agent's link current/key.pem: not followed, not changed";
    lines.push(diagnosis('PROBLEM', 'private key', `${named} is ${what}, ${why}; ${todo}`));
  }
  return want;
}

/** One path: 'good', a line saying what is wrong (or what --fix changed), or undefined when it does not exist yet. */
function auditPath(w: Expect, audit: Audit): Diagnosis | 'good' | undefined {
  const found = statPath(w, audit);
  if (!found || 'status' in found) return found;
  const { path, st, under } = found;
  const wrong = wrongAccess(w, st, audit.group !== undefined && under);
  if (!wrong) return 'good';
  if (!audit.fix) return diagnosis('PROBLEM', w.what, `${w.path} ${wrong.problems}: run cert-agent doctor --fix`);
  return fixPath({ w, path, st, under, dir: audit.config.certificate.dir, ...wrong });
}

/** The path's Stats when it is the kind the agent keeps there and its own; a line when it is not. */
function statPath(
  w: Expect,
  { config, readUids }: Audit,
): Diagnosis | { path: string; st: Stats; under: boolean } | undefined {
  const dir = config.certificate.dir;
  // The configured directory may be a link root made; below it nothing is followed.
  const configured = w.path === dir || w.path === config.stateDir;
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
    const todo = 'not followed, not changed; remove it and run cert-agent renew --force';
    return diagnosis('PROBLEM', w.what, `${w.path} is ${found}, not the agent's: ${todo}`);
  }
  if (under) {
    try {
      checkChain(dir, w.path, readUids);
    } catch (err) {
      return diagnosis('PROBLEM', w.what, `${describeError(err)}`);
    }
  }
  return { path, st, under };
}

/** What is wrong with the mode and owner against the model, in words; undefined when nothing is. */
function wrongAccess(
  w: Expect,
  st: Stats,
  shared: boolean,
): { uid: number; gid: number; wrongOwner: boolean; problems: string } | undefined {
  const loose = st.mode & 0o077 & ~w.mode;
  const closed = shared ? w.mode & 0o070 & ~st.mode : 0;
  const uid = w.owner && w.owner.uid >= 0 ? w.owner.uid : st.uid;
  const gid = w.owner && w.owner.gid >= 0 ? w.owner.gid : st.gid;
  const wrongOwner = st.uid !== uid || st.gid !== gid;
  if (!loose && !closed && !wrongOwner) return undefined;
  const modes = `(mode ${octal4(st.mode)}, want ${octal4(w.mode)})`;
  const who = [st.mode & 0o070 ? 'group' : '', st.mode & 0o007 ? 'others' : ''].filter(Boolean).join(' and ');
  const problems = [
    ...(loose ? [`is ${st.mode & 0o044 ? 'readable' : 'accessible'} by ${who} ${modes}`] : []),
    ...(closed ? [`is not readable by the consumer group ${gid} ${modes}`] : []),
    ...(wrongOwner ? [`is owned by ${st.uid}:${st.gid}, want ${uid}:${gid}`] : []),
  ].join(' and ');
  return { uid, gid, wrongOwner, problems };
}

interface Fix {
  w: Expect;
  /** The path to open (the configured directory through its link). */
  path: string;
  st: Stats;
  under: boolean;
  dir: string;
  uid: number;
  gid: number;
  wrongOwner: boolean;
  problems: string;
}

/** Sets the model's group and other bits and owner through a descriptor opened without following links. */
function fixPath({ w, path, st, under, dir, uid, gid, wrongOwner, problems }: Fix): Diagnosis {
  let fd: number | undefined;
  try {
    // Every directory above must be the agent's own by now (fixed top-down), so nothing can be swapped in.
    if (under) checkChain(dir, w.path, [AGENT_UID], true);
    const opened = openNoFollow(path, w.kind);
    fd = opened.fd;
    if (opened.st.ino !== st.ino || opened.st.dev !== st.dev) throw new Error('it changed while doctor checked it');
    if (w.kind === 'file' && opened.st.nlink !== 1) throw new Error(`it has ${opened.st.nlink} hard links`);
    // The owner's bits stay; group and other bits become what the model gives.
    const mode = (st.mode & 0o700) | (w.mode & 0o077);
    setAccessFd(fd, opened.st, { uid, gid, mode });
    const changed = [
      (st.mode & 0o777) !== mode ? `mode ${octal4(st.mode)} -> ${octal4(mode)}` : '',
      wrongOwner ? `owner ${st.uid}:${st.gid} -> ${uid}:${gid}` : '',
    ];
    return diagnosis('FIXED', w.what, `${w.path}: ${changed.filter(Boolean).join(', ')}`);
  } catch (err) {
    return diagnosis('PROBLEM', w.what, `${w.path} ${problems}; --fix failed: ${describeError(err)}`);
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

const octal4 = (m: number) => (m & 0o777).toString(8).padStart(4, '0');

function safeLstat(path: string): Stats | undefined {
  try {
    return lstatMaybe(path);
  } catch {
    return undefined;
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
