/**
 * Two writers: `cert-agent renew --force` from a shell while the daemon
 * renews back to back (a certificate due the moment it is issued). The lock
 * in the state directory serialises them. Decision: the loser does not wait;
 * it exits 75 (EX_TEMPFAIL) at once with one line naming the holder, and the
 * daemon, when it is the loser, simply tries again at its next check.
 */
import { rmSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { agentPaths, checkLive, sleep, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

const RUNS = 15;
let ca: StepCa;
let p: AgentPaths;

beforeAll(async () => {
  // Two-minute certificates (1 min + 1 min backdating) renewed at 10 % of
  // their life: already due when issued, so the daemon renews continuously.
  ca = await startStepCa({ certDuration: '1m' });
  p = agentPaths();
  writeConfig(p, ca, ca.acmeHttpPort, { renewal: { at: 0.1, jitter: 0, check: '* * * * * *' } });
});
afterAll(async () => {
  await ca?.cleanup();
  if (p) rmSync(p.dir, { recursive: true, force: true });
});

describe('renew while the daemon renews', () => {
  it('the lock serialises them: the loser exits 75 with one clear line, nothing is corrupted', async ({ task }) => {
    const d = new DaemonProcess(p.config);
    try {
      await d.waitFor('certificate_installed', 2, 60_000);
      const codes: number[] = [];
      const lockedLines: string[] = [];
      for (let i = 0; i < RUNS; i++) {
        const r = await runAgent(['renew', '--force', '--config', p.config]);
        codes.push(r.code);
        if (r.code === 75) lockedLines.push(r.stderr);
        else expect(r.code, r.stderr).toBe(0);
        expect(checkLive(p.certDir, ca.rootPem), `after renew ${i}`).toMatchObject({ ok: true });
        await sleep(Math.random() * 200);
      }
      const daemonInstalls = d.events('certificate_installed').length;
      expect(lockedLines.length).toBeGreaterThan(0);
      for (const line of lockedLines) expect(line).toMatch(/^cert-agent: another cert-agent \(pid \d+\) is renewing; try again when it is done\n$/);
      expect(d.events('internal_error')).toEqual([]);
      expect(() => JSON.parse(readFileSync(join(p.stateDir, 'state.json'), 'utf8'))).not.toThrow();
      const code = await d.stop();
      expect(code).toBe(0);
      expect(existsSync(join(p.stateDir, 'lock'))).toBe(false);
      expect(checkLive(p.certDir, ca.rootPem).ok).toBe(true);
      const won = codes.filter((c) => c === 0).length;
      record(task, {
        scenario: 'two writers',
        injected: `${RUNS} × cert-agent renew --force while the daemon renews back to back`,
        expected: 'lock serialises; loser exits 75 with one line; no corruption',
        observed: `renew: ${won} × exit 0 (took the lock between daemon passes), ${lockedLines.length} × exit 75 "another cert-agent (pid N) is renewing"; daemon installed ${daemonInstalls} sets meanwhile, no internal error; live set valid after every run; lock gone after SIGTERM (exit ${code})`,
      });
    } finally {
      await d.stop();
    }
  }, 120_000);
});
