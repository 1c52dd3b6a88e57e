/**
 * The primitives that keep root from following a link in the certificate
 * directory: a link is refused by name, owner and mode are set on the
 * object itself through its descriptor, a new file has its final mode and
 * group before it holds a byte, and a delete never leaves the tree it was
 * given. Run as root against real files (the tests chown to nobody).
 */
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, StoreRefusalError } from '../../../agent/lib/errors.js';
import {
  checkChain,
  createFile,
  openNoFollow,
  readNoFollow,
  removeOwnTree,
  setAccess,
} from '../../../agent/lib/safefs.js';
import { tempDir } from '../../helpers/agent.js';

const NOBODY = 65534;
let dir: string;
let victim: string;
const mode = (p: string) => statSync(p).mode & 0o7777;

beforeEach(() => {
  dir = tempDir('cert-agent-safefs-');
  victim = join(dir, 'victim');
  writeFileSync(victim, 'root only\n', { mode: 0o600 });
  chmodSync(victim, 0o600);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('safefs', () => {
  it('setAccess refuses a symbolic link and leaves its target as it was', () => {
    const link = join(dir, 'key.pem');
    symlinkSync(victim, link);
    const refusal = `${link} is a symbolic link to ${victim}, not a file the agent made: refusing to follow it`;
    expect(() => setAccess(link, 'file', { uid: NOBODY, gid: NOBODY, mode: 0o644 })).toThrow(
      new StoreRefusalError(refusal),
    );
    const st = statSync(victim);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([0, 0, 0o600]);
  });

  it('setAccess refuses a file with a second hard link (another file of the system linked in)', () => {
    const link = join(dir, 'combined.pem');
    linkSync(victim, link);
    expect(() => setAccess(link, 'file', { uid: -1, gid: NOBODY, mode: 0o640 })).toThrow(
      /has 2 hard links: it may be another file of the system/,
    );
    expect([statSync(victim).gid, mode(victim)]).toEqual([0, 0o600]);
  });

  it('setAccess sets owner, group and mode on the object itself, and refuses one swapped since the check', () => {
    const d = join(dir, 'set');
    mkdirSync(d, { mode: 0o700 });
    const before = lstatSync(d);
    setAccess(d, 'directory', { uid: 0, gid: NOBODY, mode: 0o750 }, before);
    expect([statSync(d).uid, statSync(d).gid, mode(d)]).toEqual([0, NOBODY, 0o750]);
    // Another directory put in its place (made first, so it cannot reuse the inode).
    mkdirSync(`${d}.new`);
    rmSync(d, { recursive: true });
    renameSync(`${d}.new`, d);
    expect(() => setAccess(d, 'directory', { uid: 0, gid: 0, mode: 0o700 }, before)).toThrow(
      /changed while the agent was checking it/,
    );
  });

  it('openNoFollow refuses a link to a directory and a directory where a file is expected', () => {
    const link = join(dir, '.sets');
    symlinkSync(dir, link);
    expect(() => openNoFollow(link, 'directory')).toThrow(
      `${link} is a symbolic link to ${dir}, not a directory the agent made: refusing to follow it`,
    );
    expect(() => openNoFollow(dir, 'file')).toThrow(/is a directory owned by uid 0 .*, not a file: refusing to touch/);
  });

  it('createFile has the group and the final mode on the descriptor before any content, whatever the umask', () => {
    const old = process.umask(0o077);
    try {
      const key = join(dir, 'key.pem');
      createFile(key, 'secret\n', { gid: NOBODY, mode: 0o640 });
      expect([statSync(key).uid, statSync(key).gid, mode(key)]).toEqual([0, NOBODY, 0o640]);
      expect(readFileSync(key, 'utf8')).toBe('secret\n');
      // Exclusive: an existing name (or a planted link) is never written through.
      const link = join(dir, 'cert.pem');
      symlinkSync(victim, link);
      expect(() => createFile(link, 'x', { gid: -1, mode: 0o644 })).toThrow(StoreError);
      expect([readFileSync(victim, 'utf8'), mode(victim)]).toEqual(['root only\n', 0o600]);
    } finally {
      process.umask(old);
    }
  });

  it('readNoFollow reads a file but not through a link', () => {
    const link = join(dir, 'fullchain.pem');
    symlinkSync(victim, link);
    expect(readNoFollow(victim)).toBe('root only\n');
    expect(() => readNoFollow(link)).toThrow(/is a symbolic link to .*refusing to follow it/);
  });

  it('checkChain refuses a link or a foreign directory on the way down', () => {
    const sets = join(dir, '.sets');
    const outside = tempDir('cert-agent-safefs-outside-');
    try {
      symlinkSync(outside, sets);
      const key = join(sets, 'id', 'key.pem');
      expect(() => checkChain(dir, key, [0])).toThrow(
        `${sets} is a symbolic link to ${outside}, not a directory the agent made: ` +
          'refusing to follow it; remove it',
      );
      rmSync(sets);
      mkdirSync(join(sets, 'id'), { recursive: true, mode: 0o700 });
      chownSync(sets, NOBODY, NOBODY);
      expect(() => checkChain(dir, key, [0])).toThrow(/\.sets is a directory owned by uid 65534 .*not the agent's/);
      chownSync(sets, 0, 0);
      chmodSync(sets, 0o777);
      expect(() => checkChain(dir, key, [0], true)).toThrow(/writable by group or others/);
      chmodSync(sets, 0o700);
      expect(() => checkChain(dir, key, [0], true)).not.toThrow();
      expect(() => checkChain(dir, join(dir, '..', 'etc', 'x'), [0])).toThrow(/is outside/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("removeOwnTree unlinks links as names, keeps what is not the agent's, never reaches outside", () => {
    const outside = tempDir('cert-agent-safefs-outside-');
    try {
      writeFileSync(join(outside, 'keep'), 'x');
      const set = join(dir, 'set');
      mkdirSync(join(set, 'sub'), { recursive: true, mode: 0o700 });
      symlinkSync(outside, join(set, 'to-outside'));
      writeFileSync(join(set, 'sub', 'f'), 'y');
      expect(removeOwnTree(set)).toEqual([]);
      expect(() => lstatSync(set)).toThrow();
      expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('x');
      // A directory another uid owns is left with its content.
      const foreign = join(dir, 'foreign');
      mkdirSync(foreign);
      writeFileSync(join(foreign, 'f'), 'z');
      chownSync(foreign, NOBODY, NOBODY);
      expect(removeOwnTree(foreign)).toEqual([foreign]);
      expect(readFileSync(join(foreign, 'f'), 'utf8')).toBe('z');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
