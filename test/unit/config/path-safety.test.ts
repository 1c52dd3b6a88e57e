/**
 * The certificate and state directories are looked up as the kernel would,
 * one component at a time, and every link met on the way (the path's own
 * and any in a link's target) must be root's, in a directory only root can
 * change, with every directory of each target root's too. Otherwise a link
 * root made could lead through one another user can repoint, and the pass
 * would re-mode or write whatever that user chose. Links that another user
 * owns or repoints are made by the real `nobody` user (setpriv).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lchownSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../agent/config/config.js';
import { storeDirectoryProblem } from '../../../agent/config/path-safety.js';
import { ConfigError, ExitCode, StoreError } from '../../../agent/lib/errors.js';
import type { Logger } from '../../../agent/lib/log.js';
import { renewPass } from '../../../agent/renewal/pass.js';
import { CertStore } from '../../../agent/store/sets.js';
import { tempDir } from '../../helpers/agent.js';

const NOBODY = 65534;
const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const asRoot = process.getuid?.() === 0;

let base: string;
beforeEach(() => {
  base = tempDir('cert-agent-links-');
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

/** Points `link` at `target` as nobody:nogroup with no other groups (replacing it if there); "ok" or the errno code. */
function linkAsNobody(target: string, link: string): string {
  const script = `const fs = require('fs'); const [a, b] = JSON.parse(process.argv[1]);
try { fs.rmSync(b, { force: true }); fs.symlinkSync(a, b); console.log('ok'); } catch (e) { console.log(e.code); }`;
  const argv = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', script];
  return execFileSync('setpriv', [...argv, JSON.stringify([target, link])], { encoding: 'utf8' }).trim();
}

/** A link root made, as `nobody` would find it: root's, unless `uid` says otherwise. */
function link(target: string, path: string, uid = 0): string {
  symlinkSync(target, path);
  lchownSync(path, uid, uid);
  return path;
}

function writeConfigFile(certDir: string, stateDir = join(base, 'state')): string {
  const file = join(base, 'config.yaml');
  const doc = {
    ca: { url: 'https://127.0.0.1:1', fingerprint: FP },
    certificate: { domains: ['app.internal'], dir: certDir, owner: 'nobody' },
    challenge: { mode: 'standalone', listen: '127.0.0.1:1' },
    stateDir,
  };
  writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
  return file;
}

/** The one-line refusal of loading `file`, exit 78. */
function loadRefusal(file: string): string {
  try {
    loadConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(ExitCode.config);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error(`expected ${file} to be refused`);
}

const looks = (...paths: string[]) =>
  paths.map((p) => {
    const st = statSync(p);
    return `${p} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
  });

const quietLog: Logger = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} };

describe.runIf(asRoot)('certificate and state directories: every link on the way, and where each leads', () => {
  it("a root link to nobody's link in nobody's directory: refused at load (78) and by the store before it re-modes the victim (73)", () => {
    const theirs = dir(join(base, 'att'), 0o755, NOBODY);
    dir(join(base, 'real', 'certs'), 0o700);
    const victim = dir(join(base, 'victim'), 0o700);
    expect(linkAsNobody(join(base, 'real', 'certs'), join(theirs, 'l2'))).toBe('ok');
    const certDir = link(join(theirs, 'l2'), join(dir(join(base, 'etc')), 'certs'));

    const under =
      /^lies under \S+\/att, which is owned by uid 65534 with mode 0755; .*: chown root \S+\/att, or choose/;
    expect(storeDirectoryProblem(certDir, 'certificate')).toMatch(under);
    expect(storeDirectoryProblem(certDir, 'state')).toMatch(under);
    expect(storeDirectoryProblem(join(certDir, 'sub'), 'state')).toMatch(under);
    expect(loadRefusal(writeConfigFile(certDir))).toMatch(
      /^config: certificate\.dir: "[^"]+\/etc\/certs" lies under \S+\/att, /,
    );

    // nobody repoints its link at root's private directory; the store must not touch it.
    expect(linkAsNobody(victim, join(theirs, 'l2'))).toBe('ok');
    const before = looks(victim);
    const store = new CertStore(certDir, { group: NOBODY });
    let err: unknown;
    try {
      store.secure();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).exitCode).toBe(ExitCode.cantCreate);
    expect((err as Error).message).toMatch(
      /^certificate\.dir "[^"]+" is no longer safe .* lies under \S+\/att, .*; nothing was written$/,
    );
    expect(looks(victim)).toEqual(before);
  });

  it("a link nobody owns met in a link's target is refused, even in root's directory", () => {
    dir(join(base, 'real', 'certs'), 0o700);
    const l2 = link(join(base, 'real', 'certs'), join(dir(join(base, 'mid')), 'l2'), NOBODY);
    const certDir = link(l2, join(base, 'certs'));
    expect(storeDirectoryProblem(certDir, 'certificate')).toMatch(
      /^leads through \S+\/mid\/l2, which is a symlink owned by uid 65534; another user could point it elsewhere$/,
    );
    expect(storeDirectoryProblem(join(certDir, 'state'), 'state')).toMatch(
      /^leads through \S+\/mid\/l2, which is a symlink owned by uid 65534/,
    );
    expect(loadRefusal(writeConfigFile(join(base, 'tls'), certDir))).toMatch(
      /^config: stateDir: "[^"]+\/certs" leads through \S+\/mid\/l2, which is a symlink owned by uid 65534;/,
    );
  });

  it("the directory holding a target's link must be root-only too (sticky world-writable is not)", () => {
    dir(join(base, 'real', 'certs'), 0o700);
    const l2 = link(join(base, 'real', 'certs'), join(dir(join(base, 'tmp'), 0o1777), 'l2'));
    const certDir = link(l2, join(base, 'certs'));
    expect(storeDirectoryProblem(certDir, 'certificate')).toMatch(
      /^lies under \S+\/tmp, which is owned by uid 0 with mode 1777; .*sticky or not.*: chmod go-w \S+\/tmp, or choose/,
    );
  });

  it("a dangling link is refused when its target would be made in a directory another user can change, accepted in root's", () => {
    const theirs = dir(join(base, 'att'), 0o755, NOBODY);
    const etc = dir(join(base, 'etc'));
    const intoTheirs = link(join(theirs, 'state'), join(etc, 'state'));
    expect(storeDirectoryProblem(intoTheirs, 'state')).toMatch(/^lies under \S+\/att, which is owned by uid 65534 /);
    expect(loadRefusal(writeConfigFile(join(base, 'tls'), intoTheirs))).toMatch(
      /^config: stateDir: "[^"]+\/etc\/state" lies under \S+\/att, which is owned by uid 65534 /,
    );
    const safe = dir(join(base, 'safe'), 0o755);
    expect(storeDirectoryProblem(link(join(safe, 'state'), join(etc, 'state2')), 'state')).toBeUndefined();
    expect(storeDirectoryProblem(link('../safe/missing/deeper', join(etc, 'state3')), 'state')).toBeUndefined();
    // A relative target is looked up from the directory holding the link, ".." included.
    expect(storeDirectoryProblem(link('../att/state', join(etc, 'state4')), 'state')).toMatch(/^lies under \S+\/att, /);
  });

  it('follows at most 40 links, as the kernel does: a loop or a longer chain is refused with one line', () => {
    const real = dir(join(base, 'real'), 0o700);
    const chain = dir(join(base, 'chain'));
    for (let i = 40; i >= 0; i--) link(i === 40 ? real : join(chain, `l${i + 1}`), join(chain, `l${i}`));
    expect(storeDirectoryProblem(join(chain, 'l1'), 'state')).toBeUndefined(); // 40 links
    expect(storeDirectoryProblem(join(chain, 'l0'), 'state')).toMatch(
      /^leads through \S+\/chain\/l40, which is a symlink past the 40 links one lookup may follow .*; point the path at the directory itself$/,
    );
    link(join(chain, 'b'), join(chain, 'a'));
    link('a', join(chain, 'b'));
    expect(storeDirectoryProblem(join(chain, 'a', 'state'), 'state')).toMatch(/past the 40 links/);
    expect(loadRefusal(writeConfigFile(join(chain, 'a')))).toMatch(
      /^config: certificate\.dir: "[^"]+\/chain\/a" (is|leads through \S+, which is) a symlink past the 40 links/,
    );
  });

  it('a pass refuses (73) when a directory holding a link in the target changed hands after load; the victim is untouched', async () => {
    dir(join(base, 'real', 'certs'), 0o750);
    const mid = dir(join(base, 'mid'));
    const l2 = link(join(base, 'real', 'certs'), join(mid, 'l2'));
    const certDir = link(l2, join(dir(join(base, 'etc')), 'certs'));
    const stateDir = dir(join(base, 'state'), 0o700);
    const victim = dir(join(base, 'victim'), 0o700);
    writeFileSync(join(victim, 'root-file'), 'root only\n', { mode: 0o600 });
    const config = loadConfig(writeConfigFile(certDir, stateDir));
    const before = looks(victim, join(victim, 'root-file'));

    chownSync(mid, NOBODY, NOBODY);
    expect(linkAsNobody(victim, l2)).toBe('ok');
    const err = await renewPass({ config, log: quietLog }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).exitCode).toBe(ExitCode.cantCreate);
    expect((err as Error).message).toMatch(
      /^certificate\.dir "[^"]+\/etc\/certs" is no longer safe to write through since the configuration was loaded: it lies under \S+\/mid, which is owned by uid 65534 with mode 0755; .*; nothing was written$/,
    );
    expect(looks(victim, join(victim, 'root-file'))).toEqual(before);
    expect(readdirSync(victim)).toEqual(['root-file']);
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('still accepts root-only chains: relative and absolute links, ".." in a target, missing directories below', () => {
    const real = dir(join(base, 'real', 'certs'), 0o700, NOBODY); // an older install left it to its consumer
    const etc = dir(join(base, 'etc'));
    expect(storeDirectoryProblem(link('../real/certs', join(etc, 'rel')), 'certificate')).toBeUndefined();
    expect(storeDirectoryProblem(link(real, join(etc, 'abs')), 'certificate')).toBeUndefined();
    expect(storeDirectoryProblem(link(join(etc, 'rel'), join(etc, 'via')), 'certificate')).toBeUndefined();
    expect(storeDirectoryProblem(join(link('../real', join(etc, 'up')), 'missing', 'state'), 'state')).toBeUndefined();
    expect(loadConfig(writeConfigFile(join(etc, 'via'), join(etc, 'up', 'state'))).certificate.dir).toBe(
      join(etc, 'via'),
    );
  });
});
