/**
 * The certificate directory (its paths and modes: layout.ts). Each issued
 * set lives in its own directory under .sets/; the names a proxy reads
 * (key.pem, cert.pem, …) are fixed symlinks through `current`, and going
 * live is one rename(2) of `current`. So a reader resolves either the whole
 * old set or the whole new one, a crash leaves one of the two, and
 * `previous` keeps the last set for rollback.
 *
 * Everything here belongs to the agent's uid (root); a consumer reads through
 * the group G and can change nothing, so it cannot plant a link that root
 * would later follow. A `.sets`, `current` or `previous` that is not the
 * agent's own is refused with a StoreError, never followed (see safefs.ts).
 */
import { mkdirSync, readdirSync, renameSync, type Stats } from 'node:fs';
import { type X509Certificate, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { InvalidCertificateError, StoreError, StoreRefusalError, describeError } from '../lib/errors.js';
import { ensureDir, syncDir } from '../lib/fs.js';
import {
  AGENT_GID,
  AGENT_UID,
  checkChain,
  checkOwnDir,
  closeQuietly,
  createFile,
  describeEntry,
  lstatMaybe,
  octal,
  readNoFollow,
  removeOwnTree,
  setAccess,
  setAccessFd,
  unlinkMaybe,
  type Access,
  type Kind,
} from '../lib/safefs.js';
import { parseCerts, toPem } from '../pki/x509.js';
import { assessSet, firstCritical } from '../pki/assess.js';
import { openCheckedDir } from './directories.js';
import {
  CURRENT_LINK,
  PATHS,
  PREVIOUS_LINK,
  SET_FILES,
  SETS_DIR as SETS,
  publishedTarget,
  setFileMode,
  type OwnedPath,
  type Ownership,
} from './layout.js';
import { isSetFile, replaceWithLink, safeReadlink, setLinkTarget } from './links.js';

export interface NewSet {
  keyPem: string;
  /** Leaf followed by intermediates. */
  fullchainPem: string;
  /** The trusted roots, written as ca.pem. */
  rootsPem: string[];
  /** Marks a self-signed stand-in; it skips the chain check. */
  placeholder?: boolean;
}

export interface LiveSet {
  id: string;
  path: string;
  keyPem: string;
  cert: X509Certificate;
  intermediates: X509Certificate[];
  placeholder: boolean;
}

/** What a set must satisfy before it goes live; a failure names the first problem. */
export function checkSet(
  set: NewSet,
  expect: { domains: string[]; roots: X509Certificate[]; now: Date },
): { leaf: X509Certificate; intermediates: X509Certificate[] } {
  let certs: X509Certificate[];
  try {
    certs = parseCerts(set.fullchainPem);
  } catch (err) {
    throw new InvalidCertificateError(`the certificate does not parse: ${describeError(err)}`);
  }
  const [leaf, ...intermediates] = certs;
  if (!leaf) throw new InvalidCertificateError('the CA sent no certificate');
  const unfit = firstCritical(
    assessSet({ keyPem: set.keyPem, cert: leaf, intermediates, placeholder: Boolean(set.placeholder) }, expect)
      .findings,
  );
  if (unfit) throw new InvalidCertificateError(unfit.message);
  return { leaf, intermediates };
}

export class CertStore {
  /** What `secure()` changed on its last call, one line each, for the log. */
  readonly changes: string[] = [];
  /** The certificate directory this store first opened (device, inode): later opens must find the same one. */
  private opened: Stats | undefined;

  constructor(
    readonly dir: string,
    private readonly owner: Ownership = {},
  ) {}

  /** Mode of the directories: the consumer group may list and enter them. */
  private get dirMode(): number {
    return PATHS.set.mode(this.owner);
  }

  private get gid(): number {
    return this.owner.group ?? AGENT_GID;
  }

  /** The owners a directory may have when it is read: the agent, or (until taken back) the old owner. */
  private get readUids(): number[] {
    return this.owner.legacyUid === undefined ? [AGENT_UID] : [AGENT_UID, this.owner.legacyUid];
  }

  /** Checks the set, writes it next to the live one and switches `current` to it in one rename. */
  install(set: NewSet, expect: { domains: string[]; roots: X509Certificate[]; now: Date }): LiveSet {
    const { leaf, intermediates } = checkSet(set, expect);
    this.prepare();
    // What an install killed before its own prune left behind goes now, so
    // crashes in a row cannot pile up sets: at most current, previous and
    // the one being written exist.
    this.prune();
    const id = `${expect.now.toISOString().replace(/[-:]|\.\d+/g, '')}-${leaf.serialNumber.slice(-8).toLowerCase()}-${randomBytes(2).toString('hex')}`;
    const path = join(this.dir, SETS, id);
    try {
      mkdirSync(path, { mode: 0o700 });
      setAccess(path, 'directory', { uid: -1, gid: this.gid, mode: this.dirMode });
      const chainPem = intermediates.map(toPem).join('');
      const files: [OwnedPath, string][] = [
        [PATHS.key, set.keyPem],
        [PATHS.cert, toPem(leaf)],
        [PATHS.chain, chainPem],
        [PATHS.fullchain, toPem(leaf) + chainPem],
        [PATHS.ca, set.rootsPem.join('')],
        [PATHS.combined, set.keyPem.trimEnd() + '\n' + toPem(leaf) + chainPem],
      ];
      if (set.placeholder) files.push([PATHS.placeholder, 'self-signed stand-in until the CA answers\n']);
      for (const [file, data] of files) {
        createFile(join(path, file.name), data, { gid: this.gid, mode: file.mode(this.owner) });
      }
      syncDir(path);
    } catch (err) {
      removeOwnTree(path);
      throw err instanceof StoreError
        ? err
        : new StoreError(`cannot write the new set in ${path}: ${describeError(err)}`);
    }
    const before = this.currentId();
    if (before) this.pointLink(PREVIOUS_LINK, join(SETS, before));
    this.pointLink(CURRENT_LINK, join(SETS, id));
    this.prune();
    return this.readSet(id) as LiveSet;
  }

  /** Makes `previous` live again (after a failed reload); returns false when there is none. */
  rollback(): boolean {
    const prev = this.linkTarget(PREVIOUS_LINK);
    const cur = this.currentId();
    if (!prev || !this.readSet(prev)) return false;
    this.pointLink(CURRENT_LINK, join(SETS, prev));
    if (cur) this.pointLink(PREVIOUS_LINK, join(SETS, cur));
    return true;
  }

  /** The set readers see now, read through one resolution of `current` so key and cert belong together. */
  live(): LiveSet | undefined {
    const id = this.currentId();
    return id ? this.readSet(id) : undefined;
  }

  previous(): LiveSet | undefined {
    const id = this.linkTarget(PREVIOUS_LINK);
    return id ? this.readSet(id) : undefined;
  }

  currentId(): string | undefined {
    return this.linkTarget(CURRENT_LINK);
  }

  /**
   * Makes the directory the agent's own and readable as configured, before
   * anything else touches it: the directory, `.sets` and every set in it
   * (and their files) that belongs to the old owner or to another group is
   * given to the agent's uid and the consumer group, top-down and through
   * O_NOFOLLOW descriptors, so nothing the old owner planted is followed.
   * Group and other write bits go from the directories. A `.sets`,
   * `current` or `previous` that is not the agent's own is refused
   * (StoreError). Modes the agent set itself are left to the drift check.
   * Returns (and keeps in `changes`) one line per change.
   */
  secure(): string[] {
    this.changes.length = 0;
    const top = lstatMaybe(this.dir);
    if (!top) return [];
    // Checked again and opened as a descriptor: owner and mode change on what was checked, never by path.
    const { fd, st } = this.openDir();
    try {
      checkOwnDir(this.dir, st, this.readUids);
      this.settle(this.dir, st, 'directory', (f) => setAccessFd(fd, st, f));
    } finally {
      closeQuietly(fd);
    }
    const sets = join(this.dir, SETS);
    const setsSt = lstatMaybe(sets);
    if (setsSt) {
      checkOwnDir(sets, setsSt, this.readUids);
      this.settle(sets, setsSt, 'directory');
    }
    for (const name of [CURRENT_LINK, PREVIOUS_LINK] as const) this.linkTarget(name);
    // A fixed name that is a link elsewhere (or a directory) is replaced as a
    // name, never followed; a plain file from before the agent is kept (prepare).
    for (const name of SET_FILES) {
      const link = join(this.dir, name);
      const target = publishedTarget(name);
      const lst = lstatMaybe(link);
      if (!lst || lst.isFile() || (lst.isSymbolicLink() && safeReadlink(link) === target)) continue;
      const was = describeEntry(link, lst);
      replaceWithLink(link, target);
      this.changes.push(`${link}: replaced ${was} with the link ${target}`);
    }
    if (!setsSt) return [...this.changes];
    for (const id of readdirSync(sets)) {
      const path = join(sets, id);
      const st = lstatMaybe(path);
      // Anything but a real directory of ours is left alone (and never read).
      if (!st || !st.isDirectory() || !this.readUids.includes(st.uid)) continue;
      this.settle(path, st, 'directory');
      for (const name of readdirSync(path)) {
        const file = join(path, name);
        const fst = lstatMaybe(file);
        if (!fst || !fst.isFile() || fst.nlink !== 1 || !this.readUids.includes(fst.uid)) continue;
        this.settle(file, fst, 'file');
      }
    }
    return [...this.changes];
  }

  /** Removes sets that are neither current nor previous, and temp links left by a crash. */
  prune(): void {
    const sets = join(this.dir, SETS);
    const st = lstatMaybe(sets);
    if (!st) return;
    // Deletes only inside a real .sets that nobody but the agent can change.
    checkOwnDir(sets, st, [AGENT_UID], true);
    const keep = new Set([this.linkTarget(CURRENT_LINK), this.linkTarget(PREVIOUS_LINK)]);
    for (const entry of readdirSync(sets)) {
      if (keep.has(entry)) continue;
      const path = join(sets, entry);
      const est = lstatMaybe(path);
      if (!est || !est.isDirectory() || est.uid !== AGENT_UID) continue;
      checkChain(this.dir, path, [AGENT_UID], true);
      removeOwnTree(path);
    }
    for (const entry of readdirSync(this.dir)) {
      if (!entry.endsWith('.tmp')) continue;
      const tst = lstatMaybe(join(this.dir, entry));
      if (tst && (tst.isSymbolicLink() || tst.isFile())) unlinkMaybe(join(this.dir, entry));
    }
  }

  private prepare(): void {
    // Missing parents (e.g. /etc/cert-agent/certs) as `install -d` makes
    // them, 0755: with the directory's own mode they would shut out the
    // consumer that reads through the group.
    ensureDir(dirname(this.dir), 0o755);
    try {
      mkdirSync(this.dir, { recursive: true, mode: this.dirMode });
    } catch (err) {
      throw new StoreError(`cannot create directory ${this.dir}: ${describeError(err)}`, { cause: err });
    }
    this.secure();
    const sets = join(this.dir, SETS);
    if (!lstatMaybe(sets)) {
      try {
        mkdirSync(sets, { mode: 0o700 });
      } catch (err) {
        throw new StoreError(`cannot create directory ${sets}: ${describeError(err)}`, { cause: err });
      }
      setAccess(sets, 'directory', { uid: -1, gid: this.gid, mode: this.dirMode });
    }
    for (const name of SET_FILES) {
      const link = join(this.dir, name);
      const target = publishedTarget(name);
      const st = lstatMaybe(link);
      if (st?.isSymbolicLink() && safeReadlink(link) === target) continue;
      // A plain file here is from before the agent (e.g. copied from the old
      // shared mount): keep it beside, never destroy a working certificate.
      const keep = join(this.dir, `${name}.before-cert-agent`);
      if (st?.isFile() && !lstatMaybe(keep)) renameSync(link, keep);
      replaceWithLink(link, target);
    }
  }

  /**
   * Puts published names back as links to current/<name> (a pass found them
   * missing, pointing elsewhere, or replaced by a file). A regular file there
   * is kept beside it (<name>.before-cert-agent, or with the time when that
   * exists): what a consumer may be serving is never destroyed. Only names
   * are renamed or replaced; nothing is followed. Returns where files went.
   */
  relink(names: readonly string[], now: Date): { name: string; keptAs?: string }[] {
    const done: { name: string; keptAs?: string }[] = [];
    for (const name of names) {
      if (!isSetFile(name)) continue;
      const link = join(this.dir, name);
      let keptAs: string | undefined;
      if (lstatMaybe(link)?.isFile()) {
        const stamp = now.toISOString().replace(/[-:]|\.\d+/g, '');
        keptAs = [`${link}.before-cert-agent`, `${link}.replaced-${stamp}`].find((p) => !lstatMaybe(p));
        if (!keptAs) {
          const both = `${link}.before-cert-agent and ${link}.replaced-${stamp}`;
          throw new StoreError(`cannot keep ${link} aside: ${both} exist`);
        }
        renameSync(link, keptAs);
      }
      replaceWithLink(link, publishedTarget(name));
      done.push({ name, ...(keptAs ? { keptAs } : {}) });
    }
    syncDir(this.dir);
    return done;
  }

  /**
   * Gives `path` (already lstat'ed as `st`) to the agent and the consumer
   * group when it is not theirs yet; lets the group in where the model wants
   * it; takes group/other write from directories.
   */
  private settle(path: string, st: Stats, kind: Kind, apply?: (want: Access) => void): void {
    const base = kind === 'directory' ? this.dirMode : setFileMode(path.slice(path.lastIndexOf('/') + 1), this.owner);
    let mode = st.mode & 0o7777;
    const foreign = st.uid !== AGENT_UID || st.gid !== this.gid;
    if (foreign) mode = base;
    else if (this.owner.group !== undefined) mode |= base & 0o050;
    if (kind === 'directory') mode &= ~0o022;
    if (!foreign && mode === (st.mode & 0o7777)) return;
    const want = { uid: AGENT_UID, gid: this.gid, mode };
    if (apply) apply(want);
    else setAccess(path, kind, want, st);
    this.changes.push(`${path}: ${st.uid}:${st.gid} ${octal(st.mode)} -> ${AGENT_UID}:${this.gid} ${octal(mode)}`);
  }

  private openDir(): { fd: number; st: Stats } {
    const opened = openCheckedDir(this.dir, this.opened);
    this.opened ??= opened.st;
    return opened;
  }

  private readSet(id: string): LiveSet | undefined {
    const path = join(this.dir, SETS, id);
    // .sets first: an lstat of .sets/<id> would already go through a link there.
    checkChain(this.dir, path, this.readUids);
    const st = lstatMaybe(path);
    if (!st) return undefined;
    checkOwnDir(path, st, this.readUids);
    try {
      const keyPem = readNoFollow(join(path, PATHS.key.name));
      const [cert, ...intermediates] = parseCerts(readNoFollow(join(path, PATHS.fullchain.name)));
      if (!cert) return undefined;
      const placeholder = lstatMaybe(join(path, PATHS.placeholder.name)) !== undefined;
      return { id, path, keyPem, cert, intermediates, placeholder };
    } catch (err) {
      // Something planted where the set's files belong is refused; a missing or damaged file is no set.
      if (err instanceof StoreRefusalError) throw err;
      return undefined;
    }
  }

  private linkTarget(name: typeof CURRENT_LINK | typeof PREVIOUS_LINK): string | undefined {
    return setLinkTarget(this.dir, name);
  }

  private pointLink(name: typeof CURRENT_LINK | typeof PREVIOUS_LINK, target: string): void {
    replaceWithLink(join(this.dir, name), target);
    syncDir(this.dir);
  }
}
