/**
 * Permission drift: someone makes the private key world-readable (and opens
 * the certificate directory). With permissions.onDrift: repair (the default)
 * the next check narrows the modes back and logs it; with report it leaves
 * them, logs it, and `status` warns until someone fixes it. The daemon's
 * next cron check does the same without a restart.
 */
import { chmodSync, realpathSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { agentPaths, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

let ca: StepCa;
let p: AgentPaths;
const key = () => realpathSync(join(p.certDir, 'key.pem'));
const combined = () => realpathSync(join(p.certDir, 'combined.pem'));
const mode = (path: string) => `0${(statSync(path).mode & 0o777).toString(8)}`;
const events = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event: string; path: string; mode: string });
const status = async () => {
  const r = await runAgent(['status', '--json', '--config', p.config]);
  return { code: r.code, problems: (JSON.parse(r.stdout).problems as string[]).join(' | ') };
};

beforeAll(async () => {
  ca = await startStepCa();
  p = agentPaths();
  writeConfig(p, ca, ca.acmeHttpPort);
  const r = await runAgent(['renew', '--config', p.config]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await ca?.cleanup();
  if (p) rmSync(p.dir, { recursive: true, force: true });
});

describe('key made world-readable', () => {
  it('repair (default): the next pass narrows the modes back and says so', async ({ task }) => {
    chmodSync(key(), 0o644);
    chmodSync(combined(), 0o644);
    chmodSync(p.certDir, 0o755);
    const warned = await status();
    expect(warned.code).toBe(1);
    expect(warned.problems).toMatch(/private key .* is readable by group or others \(mode 0644\)/);
    const r = await runAgent(['renew', '--config', p.config]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^not due/);
    const repaired = events(r.stderr).filter((e) => e.event === 'permissions_repaired');
    expect(repaired.map((e) => [e.path, e.mode])).toEqual([
      [p.certDir, '0755'],
      [key(), '0644'],
      [combined(), '0644'],
    ]);
    expect([mode(key()), mode(combined()), mode(p.certDir)]).toEqual(['0600', '0600', '0700']);
    const after = await status();
    expect(after.code).toBe(0);
    record(task, {
      scenario: 'permission drift (repair)',
      injected: 'chmod 0644 on the live key.pem and combined.pem, 0755 on the certificate dir; then renew (not due)',
      expected: 'next check repairs and says so',
      observed: `status before: exit ${warned.code} "${warned.problems.slice(0, 90)}…"; renew logged ${repaired.length} × permissions_repaired; modes now key ${mode(key())}, combined ${mode(combined())}, dir ${mode(p.certDir)}; status exit ${after.code}`,
    });
  });

  it('report: the next pass leaves the mode, logs it, status keeps warning', async ({ task }) => {
    writeConfig(p, ca, ca.acmeHttpPort, { permissions: { onDrift: 'report' } });
    chmodSync(key(), 0o644);
    const r = await runAgent(['renew', '--config', p.config]);
    expect(r.code, r.stderr).toBe(0);
    const drift = events(r.stderr).filter((e) => e.event === 'permissions_drift');
    expect(drift.map((e) => [e.path, e.mode])).toEqual([[key(), '0644']]);
    expect(mode(key())).toBe('0644');
    const s = await status();
    expect(s.code).toBe(1);
    expect(s.problems).toContain('readable by group or others');
    chmodSync(key(), 0o600);
    record(task, {
      scenario: 'permission drift (report)',
      injected: 'permissions.onDrift: report; chmod 0644 on the live key; renew',
      expected: 'reported, not changed',
      observed: `renew logged permissions_drift for the key (mode stays ${drift[0]!.mode}); status exit ${s.code} (WARNING)`,
    });
  });

  it('the running daemon repairs at its next check', async ({ task }) => {
    writeConfig(p, ca, ca.acmeHttpPort, { renewal: { check: '* * * * * *' } });
    const d = new DaemonProcess(p.config);
    try {
      await d.waitFor('renewal_not_due', 1, 20_000);
      chmodSync(key(), 0o640);
      const changed = Date.now();
      const [ev] = await d.waitFor('permissions_repaired', 1, 10_000);
      const secs = (Date.now() - changed) / 1000;
      expect(ev!.path).toBe(key());
      expect(mode(key())).toBe('0600');
      expect(await d.stop()).toBe(0);
      record(task, {
        scenario: 'permission drift (daemon)',
        injected: 'chmod 0640 on the live key while the daemon runs (check every second)',
        expected: 'repaired at the next check',
        observed: `permissions_repaired ${ev!.mode} -> ${String(ev!.now)} after ${secs.toFixed(1)} s`,
      });
    } finally {
      await d.stop();
    }
  });
});
