/**
 * The certificate and state directories and every directory above them
 * belong to root and are writable by nobody else (sshd's StrictModes rule):
 * refused at config load with exit 78, and again by each pass before it
 * writes anything (exit 73) when a directory above them changed hands after
 * the load. The swap itself runs as the real `nobody` user (setpriv).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../../agent/config/config.js';
import { storeDirectoryProblem } from '../../../agent/config/path-safety.js';
import { ConfigError, ExitCode, StoreError, StoreRefusalError } from '../../../agent/lib/errors.js';
import type { Logger } from '../../../agent/lib/log.js';
import { renewPass } from '../../../agent/renewal/pass.js';
import { acquireLock } from '../../../agent/store/lock.js';
import { CertStore } from '../../../agent/store/sets.js';
import { runAgent, tempDir } from '../../helpers/agent.js';
import { makeCa } from '../../helpers/certs.js';

const NOBODY = 65534;
const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const asRoot = process.getuid?.() === 0;

let base: string;
beforeEach(() => {
  base = tempDir('cert-agent-dirs-');
  chmodSync(base, 0o755);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** A directory with an owner and a mode past the umask. */
function dir(path: string, mode = 0o755, uid = 0): string {
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode);
  chownSync(path, uid, uid);
  return path;
}

function writeConfigFile(fields: { certDir: string; stateDir: string; owner?: string }): string {
  const file = join(base, 'config.yaml');
  const doc = {
    ca: { url: 'https://127.0.0.1:1', fingerprint: FP },
    certificate: { domains: ['app.internal'], dir: fields.certDir, ...(fields.owner ? { owner: fields.owner } : {}) },
    challenge: { mode: 'standalone', listen: '127.0.0.1:1' },
    stateDir: fields.stateDir,
  };
  writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
  return file;
}

function configError(file: string): ConfigError {
  try {
    loadConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(ExitCode.config);
    expect((err as Error).message).not.toContain('\n');
    return err as ConfigError;
  }
  throw new Error(`expected ${file} to be refused`);
}

/** Owner, group and mode of each path, to show nothing was re-owned or re-moded. */
const looks = (...paths: string[]) =>
  paths.map((p) => {
    const st = statSync(p);
    return `${p} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
  });

/** Runs one file operation as nobody:nogroup with no other groups; "ok" or the errno code. */
function asNobody(op: 'rename' | 'link', a: string, b: string): string {
  const script = `const fs = require('fs'); const [op, a, b] = JSON.parse(process.argv[1]);
try { if (op === 'rename') fs.renameSync(a, b); else fs.symlinkSync(a, b); console.log('ok'); } catch (e) { console.log(e.code); }`;
  const argv = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', script];
  return execFileSync('setpriv', [...argv, JSON.stringify([op, a, b])], { encoding: 'utf8' }).trim();
}

function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const keep = (level: string) => (fields: object, msg?: string) => lines.push({ level, ...fields, msg });
  return {
    lines,
    log: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error'), fatal: keep('fatal') },
  };
}

describe.runIf(asRoot)('certificate and state directories: root owns every directory above them', () => {
  it('config load refuses (78, one line naming the path) a directory another user could change above them', () => {
    const state = join(base, 'state');
    const cases: [string, () => { certDir: string; stateDir: string }, RegExp][] = [
      [
        'certificate.dir under a directory owned by nobody',
        () => ({ certDir: join(dir(join(base, 'nob'), 0o755, NOBODY), 'tls'), stateDir: state }),
        /^config: certificate\.dir: "[^"]+\/nob\/tls" lies under \S+\/nob, which is owned by uid 65534 with mode 0755; .*must be owned by root and writable by neither group nor others .*: chown root \S+\/nob, or choose/,
      ],
      [
        'stateDir under a group-writable directory',
        () => ({ certDir: join(base, 'tls'), stateDir: join(dir(join(base, 'grp'), 0o775), 'state') }),
        /^config: stateDir: "[^"]+\/grp\/state" lies under \S+\/grp, which is owned by uid 0 with mode 0775; .*: chmod go-w \S+\/grp,/,
      ],
      [
        'certificate.dir under a sticky world-writable directory (like /tmp), as sshd refuses it',
        () => ({ certDir: join(dir(join(base, 'tmp'), 0o1777), 'tls'), stateDir: state }),
        /^config: certificate\.dir: "[^"]+\/tmp\/tls" lies under \S+\/tmp, which is owned by uid 0 with mode 1777; .*sticky or not/,
      ],
      [
        'certificate.dir a root link to a directory under one owned by nobody',
        () => {
          dir(join(base, 'nob2', 'real'), 0o750);
          chownSync(join(base, 'nob2'), NOBODY, NOBODY);
          symlinkSync(join(base, 'nob2', 'real'), join(base, 'link'));
          return { certDir: join(base, 'link'), stateDir: state };
        },
        /^config: certificate\.dir: "[^"]+\/link" lies under \S+\/nob2, which is owned by uid 65534/,
      ],
      [
        'stateDir owned by nobody',
        () => ({ certDir: join(base, 'tls'), stateDir: dir(join(base, 'nobstate'), 0o700, NOBODY) }),
        /^config: stateDir: "[^"]+\/nobstate" is owned by uid 65534 with mode 0700; the state directory .*: chown root \S+\/nobstate$/,
      ],
      [
        'stateDir group-writable',
        () => ({ certDir: join(base, 'tls'), stateDir: dir(join(base, 'grpstate'), 0o770) }),
        /^config: stateDir: "[^"]+\/grpstate" is owned by uid 0 with mode 0770; .*: chmod go-w \S+\/grpstate$/,
      ],
    ];
    const wrong: string[] = [];
    for (const [name, make, message] of cases) {
      const e = configError(writeConfigFile(make()));
      if (!message.test(e.message)) wrong.push(`${name}: ${e.message}`);
    }
    expect(wrong).toEqual([]);
  });

  it('accepts a root-only chain, missing directories below it, and a certificate directory an older install left to its consumer', () => {
    const certDir = dir(join(base, 'tls'), 0o700, NOBODY);
    const file = writeConfigFile({ certDir, stateDir: join(base, 'missing', 'state'), owner: 'nobody' });
    expect(loadConfig(file).certificate.dir).toBe(certDir);
    expect(storeDirectoryProblem(join(base, 'missing', 'deeper', 'tls'), 'certificate')).toBeUndefined();
    // A link root made, in a directory only root changes, to a directory whose parents are root's: root's choice.
    symlinkSync(certDir, join(base, 'tls-link'));
    expect(storeDirectoryProblem(join(base, 'tls-link'), 'certificate')).toBeUndefined();
  });

  it('a pass refuses (73) a certificate directory swapped for a link after load; nothing outside re-moded, nothing written', async () => {
    const parent = dir(join(base, 'p'));
    const certDir = dir(join(parent, 'tls'), 0o750);
    const stateDir = dir(join(base, 'state'), 0o700);
    const victim = dir(join(base, 'victim'), 0o755);
    writeFileSync(join(victim, 'root-file'), 'root only\n', { mode: 0o644 });
    const config: Config = loadConfig(writeConfigFile({ certDir, stateDir, owner: 'nobody' }));
    const before = looks(victim, join(victim, 'root-file'));

    // After the load, the parent is given to nobody, who swaps the directory for a link to root's.
    chownSync(parent, NOBODY, NOBODY);
    expect(asNobody('rename', certDir, join(parent, 'tls.moved'))).toBe('ok');
    expect(asNobody('link', victim, certDir)).toBe('ok');

    const { log, lines } = captureLog();
    const err = await renewPass({ config, log }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).exitCode).toBe(ExitCode.cantCreate);
    expect((err as Error).message).toMatch(
      /^certificate\.dir "[^"]+\/p\/tls" is no longer safe to write through since the configuration was loaded: it lies under \S+\/p, which is owned by uid 65534 with mode 0755; .*; nothing was written$/,
    );
    expect(looks(victim, join(victim, 'root-file'))).toEqual(before);
    expect(readdirSync(victim)).toEqual(['root-file']);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(lines.filter((l) => l.level === 'error').map((l) => [l.event, l.errorKind])).toEqual([
      ['renewal_failed', 'store'],
    ]);
  });

  it('a pass refuses (73) a state directory whose parent became group-writable after load', async () => {
    const parent = dir(join(base, 'p'));
    const stateDir = dir(join(parent, 'state'), 0o700);
    const config = loadConfig(writeConfigFile({ certDir: join(base, 'tls'), stateDir }));
    chmodSync(parent, 0o775);
    const err = await renewPass({ config, log: captureLog().log }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(/^stateDir "[^"]+" is no longer safe .* mode 0775; .*chmod go-w /);
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('the lock, the first write of enroll and doctor --fix too, refuses a state directory below one nobody owns', async () => {
    const theirs = dir(join(base, 'theirs'), 0o755, NOBODY);
    const stateDir = dir(join(theirs, 'state'), 0o700);
    expect(() => acquireLock(stateDir)).toThrow(StoreError);
    expect(() => acquireLock(stateDir)).toThrow(
      /^stateDir "[^"]+" lies under \S+\/theirs, which is owned by uid 65534/,
    );
    expect(readdirSync(stateDir)).toEqual([]);
    // enroll through the bundle: exit 73, no trust.json, no config written.
    const ca = await makeCa('Dirs');
    writeFileSync(join(base, 'root.pem'), ca.root.pem);
    const r = await runAgent([
      'enroll',
      ...['--config', join(base, 'enrolled.yaml'), '--ca-url', 'https://ca.internal:9000'],
      ...['--fingerprint', ca.fingerprint, '--root-file', join(base, 'root.pem'), '--domain', 'app.internal'],
      ...['--cert-dir', join(base, 'tls'), '--state-dir', stateDir],
    ]);
    expect([r.code, r.stderr.trim()]).toEqual([
      ExitCode.cantCreate,
      expect.stringMatching(
        /^cert-agent: stateDir "[^"]+\/theirs\/state" lies under \S+\/theirs, which is owned by uid 65534 .*; nothing was written$/,
      ),
    ]);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(readdirSync(base).sort()).toEqual(['root.pem', 'theirs']);
  });

  it('the store changes owner and mode only on the directory it opened first in the pass', () => {
    const certDir = dir(join(base, 'tls'), 0o700);
    const store = new CertStore(certDir, { group: NOBODY });
    expect(store.secure()).toEqual([`${certDir}: 0:0 0700 -> 0:${NOBODY} 0750`]);
    // Replaced meanwhile (a directory of the same name, not the one this pass checked and opened).
    renameSync(certDir, join(base, 'tls.old'));
    dir(certDir, 0o700);
    expect(() => store.secure()).toThrow(
      new StoreRefusalError(
        `${certDir} changed while the agent was working in it (it is not the directory this pass checked): ` +
          'refusing to touch it; nothing was changed there',
      ),
    );
    expect(looks(certDir)).toEqual([`${certDir} 0:0 700`]);
  });
});
