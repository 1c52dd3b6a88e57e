/**
 * A directory above the certificate directory that changes hands while the
 * daemon runs. The agent (the bundle, against a real step-ca, with
 * certificate.owner: nobody) loaded a configuration whose directories were
 * root's; then the parent is given to `nobody`, who swaps the certificate
 * directory for a link to a root directory (as the real user, setpriv).
 * Every pass from then on must refuse before writing anything (state.json
 * included) and change nothing the link names; `renew` refuses the
 * configuration itself with 78; with the parent root's again the daemon
 * goes on as before.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { agentPaths, plainLines, sleep, snapshot, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

const NOBODY = 65534;
let ca: StepCa;
let p: AgentPaths;

beforeAll(async () => {
  ca = await startStepCa();
});
afterAll(async () => {
  await ca?.cleanup();
  if (p) rmSync(p.dir, { recursive: true, force: true });
});

/** One rename or symlink as nobody:nogroup with no other groups; "ok" or the errno code. */
function asNobody(op: 'rename' | 'link', a: string, b: string): string {
  const script = `const fs = require('fs'); const [op, a, b] = JSON.parse(process.argv[1]);
try { if (op === 'rename') fs.renameSync(a, b); else fs.symlinkSync(a, b); console.log('ok'); } catch (e) { console.log(e.code); }`;
  const argv = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', script];
  return execFileSync('setpriv', [...argv, JSON.stringify([op, a, b])], { encoding: 'utf8' }).trim();
}

const look = (path: string) => {
  const st = statSync(path);
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
};

describe('a directory above the certificate directory given to another user while the daemon runs', () => {
  it('every pass refuses before writing; nothing the swapped-in link names is re-owned or re-moded', async ({
    task,
  }) => {
    p = agentPaths('cert-agent-dirs-');
    chmodSync(p.dir, 0o755); // nobody must reach the parent to swap in it
    const parent = join(p.dir, 'p');
    mkdirSync(parent, { mode: 0o755 });
    chmodSync(parent, 0o755);
    p.certDir = join(parent, 'tls');
    writeConfig(p, ca, ca.acmeHttpPort, { certificate: { owner: 'nobody' } });
    const victim = join(p.dir, 'victim');
    mkdirSync(victim, { mode: 0o755 });
    chmodSync(victim, 0o755);
    writeFileSync(join(victim, 'root-file'), 'root only\n', { mode: 0o644 });
    const first = await runAgent(['renew', '--config', p.config]);
    expect(first.code, first.stderr).toBe(0);

    const d = new DaemonProcess(p.config);
    try {
      await d.waitFor('renewal_not_due', 1, 60_000);
      // The pass writes state.json and drops the lock after that line.
      for (let i = 0; existsSync(join(p.stateDir, 'lock')) && i < 100; i++) await sleep(50);
      const stateBefore = snapshot(p.stateDir);
      const victimBefore = [look(victim), look(join(victim, 'root-file'))];

      // 1. The parent changes hands: the next pass refuses, and writes nothing (state.json included).
      chownSync(parent, NOBODY, NOBODY);
      d.signal('SIGHUP');
      const [invalid] = await d.waitFor('config_invalid', 1, 20_000);
      expect(String(invalid!.error)).toMatch(
        /^config: certificate\.dir: "[^"]+\/p\/tls" lies under \S+\/p, which is owned by uid 65534 with mode 0755; /,
      );
      const [refused] = await d.waitFor('renewal_failed', 1, 30_000);
      expect([refused!.level, refused!.errorKind]).toEqual(['error', 'store']);
      expect(String(refused!.error)).toMatch(
        /^certificate\.dir "[^"]+\/p\/tls" is no longer safe to write through since the configuration was loaded: it lies under \S+\/p, which is owned by uid 65534/,
      );
      expect(snapshot(p.stateDir)).toEqual(stateBefore);

      // 2. nobody swaps the certificate directory for a link to root's directory: refused again, nothing there changes.
      expect(asNobody('rename', p.certDir, join(parent, 'tls.moved'))).toBe('ok');
      expect(asNobody('link', victim, p.certDir)).toBe('ok');
      d.signal('SIGHUP');
      await d.waitFor('config_invalid', 2, 20_000);
      const refusals = await d.waitFor('renewal_failed', 2, 30_000);
      expect(refusals.map((l) => l.errorKind)).toEqual(['store', 'store']);
      expect([look(victim), look(join(victim, 'root-file'))]).toEqual(victimBefore);
      expect(readdirSync(victim)).toEqual(['root-file']);
      expect(snapshot(p.stateDir)).toEqual(stateBefore);
      expect(d.events('certificate_installed')).toEqual([]);

      // 3. renew from a shell refuses the configuration itself: 78, one line naming the directory.
      const renew = await runAgent(['renew', '--config', p.config]);
      expect(renew.code).toBe(78);
      expect(plainLines(renew.stderr)).toEqual([
        expect.stringMatching(
          /^cert-agent: config: certificate\.dir: "[^"]+\/p\/tls" lies under \S+\/p, which is owned by uid 65534/,
        ),
      ]);
      expect([look(victim), look(join(victim, 'root-file'))]).toEqual(victimBefore);

      // 4. Root's again: the daemon takes the configuration back and goes on.
      rmSync(p.certDir);
      renameSync(join(parent, 'tls.moved'), p.certDir);
      chownSync(parent, 0, 0);
      d.signal('SIGHUP');
      await d.waitFor('config_reloaded', 1, 20_000);
      await d.waitFor('renewal_not_due', 2, 30_000);
      expect(await d.stop()).toBe(0);
      record(task, {
        scenario: 'parent of certificate.dir given to another user under the daemon',
        injected:
          'chown nobody on the parent, then as nobody: the certificate directory moved and replaced by a link to a ' +
          'root 0755 directory; SIGHUP each time; renew from a shell',
        expected: 'config refused (78), each pass refused (store) before writing; the linked directory unchanged',
        observed:
          `${d.events('config_invalid').length} config_invalid, ${refusals.length} renewal_failed (store), ` +
          `renew exit ${renew.code}; victim ${look(victim)}; state dir unchanged`,
      });
    } finally {
      await d.stop();
    }
  }, 180_000);
});
