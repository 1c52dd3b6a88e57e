/**
 * A CA that stops in the middle of an order: a byte relay in front of a real
 * step-ca forwards half of what a forced renewal sends, then either drops
 * every connection and stops listening (the CA died) or stops forwarding
 * while keeping the connections open (the CA hangs). The renewal must fail
 * with a clear error in bounded time, the certificate must stay, and the
 * next renewal once the CA is back must work.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { agentPaths, checkLive, plainLines, snapshot, writeConfig } from './common.js';
import { startTcpRelay } from './hostile-servers.js';
import { record } from './table.js';

let ca: StepCa;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  ca = await startStepCa();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await ca?.cleanup();
});

// One after the other: both use the CA's single http-01 validation port.
describe('CA stops mid-order', () => {
  for (const how of ['die', 'hang'] as const) {
    it(`${how === 'die' ? 'dies' : 'hangs'} after half of a forced renewal`, async ({ task }) => {
      const relay = await startTcpRelay(ca.port);
      cleanups.push(() => relay.close());
      const p = agentPaths();
      cleanups.push(() => rmSync(p.dir, { recursive: true, force: true }));
      writeConfig(p, { url: `https://127.0.0.1:${relay.port}`, rootFingerprint: ca.rootFingerprint }, ca.acmeHttpPort);
      const first = await runAgent(['renew', '--config', p.config]);
      expect(first.code, first.stderr).toBe(0);
      // How many bytes one forced renewal sends, to trip in the middle of the next.
      const start = relay.bytesUp;
      const measure = await runAgent(['renew', '--force', '--config', p.config]);
      expect(measure.code, measure.stderr).toBe(0);
      const perRenewal = relay.bytesUp - start;
      relay.trip(relay.bytesUp + Math.floor(perRenewal / 2), how);

      const before = snapshot(p.certDir);
      const started = Date.now();
      const r = await runAgent(['renew', '--force', '--config', p.config], { timeoutMs: 120_000 });
      const secs = (Date.now() - started) / 1000;
      const plain = plainLines(r.stderr);
      expect(relay.trippedAt).toBeDefined();
      expect(r.code, r.stderr).toBe(69);
      expect(plain).toHaveLength(1);
      expect(plain[0]).toMatch(how === 'die' ? /cannot reach|did not answer/ : /did not answer in time/);
      expect(secs).toBeLessThan(how === 'die' ? 10 : 45);
      expect(snapshot(p.certDir)).toEqual(before);
      expect(checkLive(p.certDir, ca.rootPem).ok).toBe(true);

      // The CA is back (straight, without the relay): the next renewal works.
      writeConfig(p, ca, ca.acmeHttpPort);
      const again = await runAgent(['renew', '--force', '--config', p.config]);
      expect(again.code, again.stderr).toBe(0);
      record(task, {
        scenario: `CA stops mid-order (${how})`,
        injected: `relay in front of step-ca ${how === 'die' ? 'drops all connections and stops listening' : 'stops forwarding, connections kept open'} after ${Math.floor(perRenewal / 2)} of the ${perRenewal} bytes a forced renewal sends`,
        expected: 'clear error in bounded time, certificate kept, next renewal works',
        observed: `exit ${r.code} after ${secs.toFixed(1)} s: "${plain[0]!.slice(0, 110)}"; certificate dir untouched; with the CA back (reached under its direct URL, so a new account): exit ${again.code}`,
      });
    }, 150_000);
  }
});
