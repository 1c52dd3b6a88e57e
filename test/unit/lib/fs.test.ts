/**
 * The file primitives give exactly the mode asked for whatever the process
 * umask: systemd's UMask=0077 must not turn a file meant for a proxy or an
 * exporter into one only root can read, and a wide umask must not make a
 * secret file wider than asked.
 */
import { chmodSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureDir, ensurePrivateDir, writeFileAtomic, writeNewFile } from '../../../agent/lib/fs.js';
import { StoreError } from '../../../agent/lib/errors.js';
import { tempDir } from '../../helpers/agent.js';

const modeOf = (p: string) => statSync(p).mode & 0o7777;
let dir: string;
let saved: number;

beforeEach(() => {
  dir = tempDir('cert-agent-fsutil-');
  saved = process.umask();
});
afterEach(() => {
  process.umask(saved);
  rmSync(dir, { recursive: true, force: true });
});

describe.each([0o077, 0o027, 0o022, 0o000])('under umask %o', (umask) => {
  beforeEach(() => {
    process.umask(umask);
  });

  it('writeNewFile and writeFileAtomic create files with exactly the mode asked for', () => {
    for (const mode of [0o644, 0o640, 0o600]) {
      const a = join(dir, `new-${mode.toString(8)}`);
      writeNewFile(a, 'x', mode);
      expect(modeOf(a)).toBe(mode);
      const b = join(dir, `atomic-${mode.toString(8)}`);
      writeFileAtomic(b, 'x', mode);
      expect(modeOf(b)).toBe(mode);
      writeFileAtomic(b, 'y', mode);
      expect(modeOf(b)).toBe(mode);
    }
  });

  it('ensureDir creates every missing directory with exactly the mode asked for', () => {
    const webroot = join(dir, 'www', 'acme-challenge');
    ensureDir(webroot, 0o755);
    expect(modeOf(join(dir, 'www'))).toBe(0o755);
    expect(modeOf(webroot)).toBe(0o755);
    ensurePrivateDir(join(dir, 'state', 'sub'));
    expect(modeOf(join(dir, 'state'))).toBe(0o700);
    expect(modeOf(join(dir, 'state', 'sub'))).toBe(0o700);
  });
});

describe('what ensureDir leaves alone', () => {
  it('does not re-mode a directory that already exists, nor its parents', () => {
    mkdirSync(join(dir, 'existing'));
    chmodSync(join(dir, 'existing'), 0o750);
    process.umask(0o077);
    ensureDir(join(dir, 'existing'), 0o755);
    expect(modeOf(join(dir, 'existing'))).toBe(0o750);
    ensureDir(join(dir, 'existing', 'new'), 0o755);
    expect(modeOf(join(dir, 'existing'))).toBe(0o750);
    expect(modeOf(join(dir, 'existing', 'new'))).toBe(0o755);
    expect(modeOf(dir)).toBe(0o700);
  });

  it('refuses a path that is a file, and does not touch what a link points to', () => {
    writeFileSync(join(dir, 'file'), '');
    expect(() => ensureDir(join(dir, 'file'), 0o755)).toThrow(StoreError);
    mkdirSync(join(dir, 'elsewhere'), { mode: 0o700 });
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'link'));
    ensureDir(join(dir, 'link'), 0o755);
    expect(modeOf(join(dir, 'elsewhere'))).toBe(0o700);
  });
});
