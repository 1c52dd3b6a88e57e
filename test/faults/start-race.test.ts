/**
 * A daemon starting while `cert-agent renew` runs from a shell. Every write
 * to the state and certificate directories happens under the lock, the
 * daemon's start included (daemon.pid, the prune of leftovers, the
 * first-start placeholder): while another agent holds the lock the starting
 * daemon writes nothing, and a renewal racing a daemon start always ends with
 * one consistent live set.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { agentPaths, checkLive, sleep, writeConfig } from './common.js';
import { record } from './table.js';

let ca: StepCa;

beforeAll(async () => {
  ca = await startStepCa();
});
afterAll(async () => {
  await ca?.cleanup();
});

/** Clock ticks since boot at which this process started (/proc/self/stat field 22), as the agent's lock records it. */
function myStartTicks(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/** A port nothing listens on: the CA is "down". */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('a daemon starting while another agent holds the lock', () => {
  it('writes nothing until the lock is free, then installs the placeholder under it', async ({ task }) => {
    const p = agentPaths();
    try {
      const port = await closedPort();
      writeConfig(p, { url: `https://127.0.0.1:${port}`, rootFingerprint: ca.rootFingerprint }, await closedPort(), {
        renewal: { check: '* * * * * *' },
      });
      // This test process plays the `renew` from a shell that holds the lock.
      mkdirSync(p.stateDir, { recursive: true, mode: 0o700 });
      const lock = join(p.stateDir, 'lock');
      writeFileSync(lock, `${process.pid} ${myStartTicks()}\n`, { mode: 0o600 });
      const d = new DaemonProcess(p.config);
      try {
        await d.waitFor('check_skipped', 2, 30_000);
        const stateFiles = readdirSync(p.stateDir).sort();
        const certEntries = existsSync(p.certDir) ? readdirSync(p.certDir) : [];
        expect(stateFiles, 'state directory while the lock is held elsewhere').toEqual(['lock']);
        expect(certEntries, 'certificate directory while the lock is held elsewhere').toEqual([]);
        expect(d.events('placeholder_installed')).toEqual([]);

        rmSync(lock);
        const [placed] = await d.waitFor('placeholder_installed', 1, 30_000);
        expect(existsSync(join(p.stateDir, 'daemon.pid'))).toBe(true);
        expect(readFileSync(join(p.stateDir, 'daemon.pid'), 'utf8').trim()).toBe(String(d.pid));
        record(task, {
          scenario: 'daemon starts while renew holds the lock',
          injected: 'lock held by another live process at daemon start, CA down',
          expected: 'nothing written until the lock is free; then placeholder under the lock',
          observed: `held: state dir ${JSON.stringify(stateFiles)}, cert dir ${JSON.stringify(certEntries)}; freed: placeholder ${String(placed?.serial)}`,
        });
      } finally {
        expect(await d.stop()).toBe(0);
      }
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });
});

describe('renew racing a starting daemon', () => {
  it('ends with one consistent live set every time; the loser exits 75 or waits its turn', async ({ task }) => {
    const p = agentPaths();
    const rounds = 6;
    const codes: number[] = [];
    try {
      writeConfig(p, ca, ca.acmeHttpPort);
      const first = await runAgent(['renew', '--config', p.config]);
      expect(first.code, first.stderr).toBe(0);
      for (let i = 0; i < rounds; i++) {
        // The daemon starts (first pass: prune, pid, maybe a renewal) while a
        // forced renewal from a shell installs a new set at the same moment.
        const d = new DaemonProcess(p.config);
        try {
          await sleep(i * 40);
          const r = await runAgent(['renew', '--force', '--config', p.config]);
          codes.push(r.code);
          expect([0, 75], r.stderr).toContain(r.code);
          await d.waitFor('daemon_started', 1, 30_000);
          await sleep(300);
          expect(d.events('internal_error')).toEqual([]);
        } finally {
          expect(await d.stop()).toBe(0);
        }
        expect(checkLive(p.certDir, ca.rootPem), `round ${i}`).toMatchObject({ ok: true });
      }
      record(task, {
        scenario: 'renew --force racing daemon start',
        injected: `${rounds} daemon starts, each with a forced renewal at once`,
        expected: 'renew exits 0 or 75; the live set is always whole and verifies',
        observed: `exit codes ${codes.join(' ')}; live set whole after every round`,
      });
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });
});
