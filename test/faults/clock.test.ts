/**
 * Clock jumps, through the agent's injected clock (the machine's clock is
 * never touched) against a real step-ca issuing 24-hour certificates. The
 * CA's clock stays where it is, which is what a container with a wrong or
 * suddenly corrected clock meets:
 *  - forward past the renewal time: renews at once, and the new certificate
 *    is valid at the agent's clock, so it goes live;
 *  - forward past expiry: it must try (it believes the certificate expired),
 *    but what the CA issues is already expired at that clock: refused;
 *  - back before the certificate's notBefore: refused likewise — a
 *    certificate that is not yet valid is never installed;
 *  - back to the true time: not due, nothing changes.
 * Then the daemon (in this process, with DaemonOptions.now) renews at its
 * next check after a forward jump and waits again after the jump back.
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../agent/config/config.js';
import { createLogger } from '../../agent/lib/log.js';
import { inProcessPasses } from '../../agent/renewal/check.js';
import { writeMetricsTextfile } from '../../agent/report/metrics.js';
import { Daemon } from '../../agent/renewal/daemon.js';
import { renewPass } from '../../agent/renewal/pass.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { agentPaths, checkLive, sleep, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

const H = 3_600_000;
let ca: StepCa;
let p: AgentPaths;
const lines: { event?: string; [k: string]: unknown }[] = [];
const log = createLogger({ level: 'info', sink: (l: string) => void lines.push(JSON.parse(l)) });
let offset = 0;
const clock = () => new Date(Date.now() + offset);

beforeAll(async () => {
  ca = await startStepCa();
  p = agentPaths();
  writeConfig(p, ca, ca.acmeHttpPort, { renewal: { check: '* * * * * *' } });
});
afterAll(async () => {
  await ca?.cleanup();
  if (p) rmSync(p.dir, { recursive: true, force: true });
});

const liveSet = () => checkLive(p.certDir, ca.rootPem).set;
const liveCert = () => new X509Certificate(readFileSync(join(p.certDir, 'cert.pem')));

async function pass(shiftMs: number): Promise<string> {
  offset = shiftMs;
  try {
    const r = await renewPass({ config: loadConfig(p.config), log, now: clock });
    return r.action;
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
}

describe('clock jumps (injected clock)', () => {
  it('renews or waits correctly and never installs a certificate not valid at its clock', async ({ task }) => {
    expect(await pass(0)).toBe('renewed');
    const first = liveSet();
    expect(await pass(1 * H)).toBe('not-due');
    expect(liveSet()).toBe(first);

    expect(await pass(20 * H)).toBe('renewed');
    const second = liveSet();
    expect(second).not.toBe(first);

    const expiredAt = new Date(liveCert().validTo);
    const forward = await pass(30 * H);
    expect(forward).toMatch(/^refused: certificate [0-9a-f]+ expired at .* \(this machine's clock says/);
    expect(liveSet()).toBe(second);

    const notBefore = new Date(liveCert().validFrom);
    const back = await pass(-2 * H);
    expect(back).toMatch(/^refused: certificate .* is not valid before/);
    expect(liveSet()).toBe(second);

    expect(await pass(0)).toBe('not-due');
    expect(liveSet()).toBe(second);
    expect(checkLive(p.certDir, ca.rootPem).ok).toBe(true);
    record(task, {
      scenario: 'clock jumps (renew pass)',
      injected:
        'agent clock +1 h, +20 h, +30 h (live cert expires ' +
        expiredAt.toISOString().slice(11, 16) +
        ' next day), -2 h (before notBefore ' +
        notBefore.toISOString().slice(11, 16) +
        '), then true time',
      expected: 'waits when not due, renews when due, never installs a certificate not valid at its clock',
      observed: `+1 h not-due; +20 h renewed (new set live); +30 h refused the CA's certificate: "${forward.replace(/^.*pinned root: /, '')}" (set kept); -2 h refused: "${back.replace(/^.*pinned root: /, '')}" (set kept); true time not-due`,
    });
  }, 60_000);

  it('the daemon renews at its next check after a jump forward and waits after the jump back', async ({ task }) => {
    offset = 0;
    const installedBefore = lines.filter((l) => l.event === 'certificate_installed').length;
    const d = new Daemon({
      configPath: p.config,
      log,
      now: clock,
      runPass: inProcessPasses(log, writeMetricsTextfile),
    });
    const count = (e: string) => lines.filter((l) => l.event === e).length;
    const until = async (pred: () => boolean, ms: number) => {
      for (const end = Date.now() + ms; !pred() && Date.now() < end;) await sleep(100);
      return pred();
    };
    try {
      d.start();
      expect(await until(() => count('renewal_not_due') > 2, 10_000)).toBe(true);
      expect(count('certificate_installed')).toBe(installedBefore);
      const set = liveSet();
      offset = 20 * H;
      expect(await until(() => count('certificate_installed') > installedBefore, 10_000)).toBe(true);
      const renewed = liveSet();
      expect(renewed).not.toBe(set);
      // The fresh certificate is already due by the jumped clock: the daemon
      // says so and backs off instead of renewing in a loop against the CA.
      expect(await until(() => count('clock_skew_suspected') >= 1, 10_000)).toBe(true);
      offset = 0;
      const settled = count('renewal_not_due') + count('check_deferred');
      expect(await until(() => count('renewal_not_due') + count('check_deferred') >= settled + 3, 10_000)).toBe(true);
      expect(count('certificate_installed')).toBe(installedBefore + 1);
      expect(liveSet()).toBe(renewed);
      record(task, {
        scenario: 'clock jumps (daemon)',
        injected: 'daemon with DaemonOptions.now; clock +20 h while running, then back',
        expected: 'renews at the next check, backs off (no loop against the CA), then waits',
        observed: `one certificate_installed after the jump, then clock_skew_suspected and a back-off instead of a renewal loop; after the jump back ${count('renewal_not_due') + count('check_deferred') - settled} checks ran and nothing was installed`,
      });
    } finally {
      await d.stop();
    }
  }, 60_000);
});
