/**
 * The certificate directory (spec §8). Each issued set lives in its own
 * private directory under .sets/; the names a proxy reads (key.pem,
 * cert.pem, …) are fixed symlinks through `current`, and going live is one
 * rename(2) of `current`. So a reader resolves either the whole old set or
 * the whole new one, a crash leaves one of the two, and `previous` keeps the
 * last set for rollback.
 *
 *   dir/            0700 owner:group
 *     key.pem       -> current/key.pem        (likewise cert, chain, fullchain, ca, combined)
 *     current       -> .sets/20261128T150102Z-1a2b3c4d
 *     previous      -> .sets/20261128T090102Z-99aa00bb
 *     .sets/<id>/   0700: key.pem and combined.pem 0600; cert.pem, chain.pem, fullchain.pem, ca.pem 0644
 */
import { chownSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { X509Certificate, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { InvalidCertificateError, StoreError, describeError } from '../lib/errors.js';
import { ensurePrivateDir, syncDir, writeNewFile } from '../lib/fs.js';
import { parseCerts, toPem } from '../pki/x509.js';
import { assessSet, firstCritical } from '../pki/assess.js';

/**
 * combined.pem (0600) is the key followed by the full chain in one file, for
 * consumers that take both from one path (HAProxy, some Java and Go
 * servers): one open(2), so even a reader that opens it at the moment of a
 * swap gets a matching pair.
 */
export const SET_FILES = ['key.pem', 'cert.pem', 'chain.pem', 'fullchain.pem', 'ca.pem', 'combined.pem'] as const;
const SETS = '.sets';

export interface NewSet {
  keyPem: string;
  /** Leaf followed by intermediates. */
  fullchainPem: string;
  /** The trusted roots, written as ca.pem. */
  rootsPem: string[];
  /** Marks a self-signed stand-in (spec §7); it skips the chain check. */
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

export interface Ownership {
  uid: number;
  gid: number;
}

/** What a set must satisfy before it goes live; a failure names the first problem. */
export function checkSet(set: NewSet, expect: { domains: string[]; roots: X509Certificate[]; now: Date }): { leaf: X509Certificate; intermediates: X509Certificate[] } {
  let certs: X509Certificate[];
  try {
    certs = parseCerts(set.fullchainPem);
  } catch (err) {
    throw new InvalidCertificateError(`the certificate does not parse: ${describeError(err)}`);
  }
  const [leaf, ...intermediates] = certs;
  if (!leaf) throw new InvalidCertificateError('the CA sent no certificate');
  const unfit = firstCritical(assessSet({ keyPem: set.keyPem, cert: leaf, intermediates, placeholder: Boolean(set.placeholder) }, expect));
  if (unfit) throw new InvalidCertificateError(unfit.message);
  return { leaf, intermediates };
}

export class CertStore {
  constructor(readonly dir: string, private readonly owner: Ownership) {}

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
      this.own(path);
      this.writeFile(path, 'key.pem', set.keyPem, 0o600);
      const chainPem = intermediates.map(toPem).join('');
      this.writeFile(path, 'cert.pem', toPem(leaf), 0o644);
      this.writeFile(path, 'chain.pem', chainPem, 0o644);
      this.writeFile(path, 'fullchain.pem', toPem(leaf) + chainPem, 0o644);
      this.writeFile(path, 'ca.pem', set.rootsPem.join(''), 0o644);
      this.writeFile(path, 'combined.pem', set.keyPem.trimEnd() + '\n' + toPem(leaf) + chainPem, 0o600);
      if (set.placeholder) this.writeFile(path, 'PLACEHOLDER', 'self-signed stand-in until the CA answers\n', 0o644);
      syncDir(path);
    } catch (err) {
      rmSync(path, { recursive: true, force: true });
      throw err instanceof StoreError ? err : new StoreError(`cannot write the new set in ${path}: ${describeError(err)}`);
    }
    const before = this.currentId();
    if (before) this.pointLink('previous', join(SETS, before));
    this.pointLink('current', join(SETS, id));
    this.prune();
    return this.readSet(id) as LiveSet;
  }

  /** Makes `previous` live again (after a failed reload); returns false when there is none. */
  rollback(): boolean {
    const prev = this.linkTarget('previous');
    const cur = this.currentId();
    if (!prev || !this.readSet(prev)) return false;
    this.pointLink('current', join(SETS, prev));
    if (cur) this.pointLink('previous', join(SETS, cur));
    return true;
  }

  /** The set readers see now, read through one resolution of `current` so key and cert belong together. */
  live(): LiveSet | undefined {
    const id = this.currentId();
    return id ? this.readSet(id) : undefined;
  }

  previous(): LiveSet | undefined {
    const id = this.linkTarget('previous');
    return id ? this.readSet(id) : undefined;
  }

  currentId(): string | undefined {
    return this.linkTarget('current');
  }

  /** Removes sets that are neither current nor previous, and temp links left by a crash. */
  prune(): void {
    const keep = new Set([this.linkTarget('current'), this.linkTarget('previous')]);
    let entries: string[] = [];
    try {
      entries = readdirSync(join(this.dir, SETS));
    } catch {
      return;
    }
    for (const entry of entries) if (!keep.has(entry)) rmSync(join(this.dir, SETS, entry), { recursive: true, force: true });
    for (const entry of readdirSync(this.dir)) if (entry.endsWith('.tmp')) rmSync(join(this.dir, entry), { force: true });
  }

  private prepare(): void {
    ensurePrivateDir(this.dir);
    ensurePrivateDir(join(this.dir, SETS));
    this.own(this.dir);
    this.own(join(this.dir, SETS));
    for (const name of SET_FILES) {
      const link = join(this.dir, name);
      const target = join('current', name);
      if (safeReadlink(link) === target) continue;
      // A plain file here is from before the agent (e.g. copied from the old
      // shared mount): keep it beside, never destroy a working certificate.
      const keep = join(this.dir, `${name}.before-cert-agent`);
      if (isPlainFile(link) && !isPlainFile(keep)) renameSync(link, keep);
      this.replaceWithLink(link, target);
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
      if (!(SET_FILES as readonly string[]).includes(name)) continue;
      const link = join(this.dir, name);
      let keptAs: string | undefined;
      if (isPlainFile(link)) {
        const stamp = now.toISOString().replace(/[-:]|\.\d+/g, '');
        keptAs = [`${link}.before-cert-agent`, `${link}.replaced-${stamp}`].find((p) => !exists(p));
        if (!keptAs) throw new StoreError(`cannot keep ${link} aside: ${link}.before-cert-agent and ${link}.replaced-${stamp} exist`);
        renameSync(link, keptAs);
      }
      this.replaceWithLink(link, join('current', name));
      done.push({ name, ...(keptAs ? { keptAs } : {}) });
    }
    syncDir(this.dir);
    return done;
  }

  private readSet(id: string): LiveSet | undefined {
    const path = join(this.dir, SETS, id);
    try {
      const keyPem = readFileSync(join(path, 'key.pem'), 'utf8');
      const [cert, ...intermediates] = parseCerts(readFileSync(join(path, 'fullchain.pem'), 'utf8'));
      if (!cert) return undefined;
      const placeholder = safeLstat(join(path, 'PLACEHOLDER'));
      return { id, path, keyPem, cert, intermediates, placeholder };
    } catch {
      return undefined;
    }
  }

  private linkTarget(name: 'current' | 'previous'): string | undefined {
    const target = safeReadlink(join(this.dir, name));
    const m = target ? /^\.sets\/([\w.-]+)$/.exec(target) : null;
    return m?.[1];
  }

  private pointLink(name: 'current' | 'previous', target: string): void {
    this.replaceWithLink(join(this.dir, name), target);
    syncDir(this.dir);
  }

  /** symlink to a temp name, then rename over: the name is never missing. */
  private replaceWithLink(link: string, target: string): void {
    const tmp = `${link}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      symlinkSync(target, tmp);
      renameSync(tmp, link);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new StoreError(`cannot switch ${link} to ${target}: ${describeError(err)}`);
    }
  }

  private writeFile(dir: string, name: string, data: string, mode: number): void {
    const path = join(dir, name);
    writeNewFile(path, data, mode);
    this.own(path);
  }

  /** chown never widens the mode a file was created with, so this is not a chmod-afterwards. */
  private own(path: string): void {
    if (this.owner.uid === process.getuid?.() && this.owner.gid === process.getgid?.()) return;
    try {
      chownSync(path, this.owner.uid, this.owner.gid);
    } catch (err) {
      throw new StoreError(`cannot give ${path} to ${this.owner.uid}:${this.owner.gid}: ${describeError(err)}`);
    }
  }
}

function safeReadlink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function isPlainFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  return safeLstat(path);
}

function safeLstat(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
