/**
 * Crash consistency: forced renewals against a real step-ca, in a process
 * that is SIGKILLed at a random moment, again and again. After every kill
 * the live set must be a key and certificate that belong together and verify
 * to the pinned root; state.json must parse; leftovers of interrupted writes
 * must stay bounded (every install prunes) and be gone after the daemon's
 * next start.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, watch } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { agentPaths, buildFixture, checkLive, leftovers, sleep, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

const KILLS = Number(process.env.FAULT_KILLS ?? 200);
/** Wall-clock budget for the kill loop; the test fails if it cannot reach KILLS in it. */
const BUDGET_MS = 240_000;

let ca: StepCa;
let p: AgentPaths;
let fixture: string;

beforeAll(async () => {
  ca = await startStepCa();
  p = agentPaths();
  writeConfig(p, ca, ca.acmeHttpPort);
  fixture = await buildFixture('renew-loop');
  const first = await runAgent(['renew', '--config', p.config]);
  expect(first.code, first.stderr).toBe(0);
});
afterAll(async () => {
  await ca?.cleanup();
  if (p) rmSync(p.dir, { recursive: true, force: true });
});

interface Victim {
  ready: Promise<void>;
  run(killAfterMs: number): Promise<{ installs: number; failures: string[]; set?: string }>;
  /** SIGKILLs it before it was told to go. */
  discard(): void;
}

/**
 * Starts a loop process that loads and waits. run() lets it renew until a
 * new set directory appears under .sets (an install has begun), then
 * SIGKILLs it `killAfterMs` later: the kill lands inside or just after the
 * install, at a random point of it.
 */
function victim(): Victim {
  const child = spawn(process.execPath, [fixture, p.config, '100000'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let signalReady: () => void;
  const ready = new Promise<void>((r) => (signalReady = r));
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.startsWith('ready\n')) signalReady();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    ready: Promise.race([ready, exited, sleep(20_000)]).then(() => undefined),
    discard: () => child.kill('SIGKILL'),
    async run(killAfterMs) {
      const sets = join(p.certDir, '.sets');
      const known = new Set(readdirSync(sets));
      let timer: NodeJS.Timeout | undefined;
      let set: string | undefined;
      const watcher = watch(sets, (_event, name) => {
        if (timer || !name || known.has(name)) return;
        set = name;
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      });
      // Should no install begin (a pass failing), the kill still comes.
      const fallback = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.stdin!.write('go\n');
      await exited;
      watcher.close();
      clearTimeout(fallback);
      clearTimeout(timer);
      const lines = out.split('\n');
      return {
        installs: lines.filter((l) => l.startsWith('installed ')).length,
        failures: lines.filter((l) => l.startsWith('failed ')),
        ...(set ? { set } : {}),
      };
    },
  };
}

describe('SIGKILL during forced renewals', () => {
  it(
    `after each of ${KILLS} kills the live set matches and verifies; leftovers bounded, cleaned at next start`,
    async ({ task }) => {
      const started = Date.now();
      let kills = 0;
      let installs = 0;
      let interrupted = 0;
      let afterSwitch = 0;
      let maxSets = 0;
      let maxTmp = 0;
      const failures: string[] = [];
      let next = victim();
      while (kills < KILLS && Date.now() - started < BUDGET_MS) {
        const current = next;
        await current.ready;
        // The next victim loads while this one runs; it touches nothing until told to go.
        next = victim();
        // An install (mkdir, five files written and fsynced, two link swaps,
        // prune) takes some tens of ms here: spread the kills over it and the
        // state write and reload that follow.
        const r = await current.run(Math.random() * 120);
        kills++;
        installs += r.installs;
        failures.push(...r.failures);
        const verdict = checkLive(p.certDir, ca.rootPem);
        expect(verdict, `after kill ${kills}`).toMatchObject({ ok: true });
        expect(
          () => JSON.parse(readFileSync(join(p.stateDir, 'state.json'), 'utf8')),
          `state.json after kill ${kills}`,
        ).not.toThrow();
        const left = leftovers(p.certDir);
        const orphans = left.sets.filter((s) => s !== left.current && s !== left.previous);
        if (orphans.length || left.tmp.length) interrupted++;
        if (r.set && left.current === r.set) afterSwitch++;
        maxSets = Math.max(maxSets, left.sets.length);
        maxTmp = Math.max(maxTmp, left.tmp.length);
        // current + previous + the one set an interrupted install was writing;
        // a kill leaves at most one temp link (between symlink and rename).
        expect(left.sets.length, `sets after kill ${kills}: ${left.sets.join(' ')}`).toBeLessThanOrEqual(3);
        expect(left.tmp.length).toBeLessThanOrEqual(1);
      }
      await next.ready;
      next.discard();
      expect(kills).toBeGreaterThanOrEqual(KILLS);
      // A pass that failed for another reason than the kill would be a bug too
      // (e.g. a stale lock that is not taken over).
      expect(failures).toEqual([]);

      // The next start of the daemon prunes whatever the last kill left.
      const d = new DaemonProcess(p.config);
      const startedOk = await d.waitFor('daemon_started', 1, 20_000).then(
        () => true,
        (err: Error) => err.message,
      );
      const code = await d.stop();
      expect(startedOk).toBe(true);
      expect(code, d.stderr.join('')).toBe(0);
      const after = leftovers(p.certDir);
      expect(after.tmp).toEqual([]);
      expect(after.sets.length).toBeLessThanOrEqual(2);
      expect(checkLive(p.certDir, ca.rootPem).ok).toBe(true);
      const secs = Math.round((Date.now() - started) / 1000);
      record(task, {
        scenario: 'crash consistency',
        injected: `SIGKILL 0-120 ms after a forced renewal (real step-ca) began installing its set, ${kills} times`,
        expected:
          'live set always a matching key+cert verifying to the pinned root; leftovers bounded; cleaned at next start',
        observed: `${kills} kills during installs (${installs} of them completed before the kill), ${afterSwitch} after current switched to the new set, ${interrupted} left a half-written set or temp link; live set valid after every kill; at most ${maxSets} sets / ${maxTmp} temp links on disk; after daemon start ${after.sets.length} sets, ${after.tmp.length} temp (${secs}s)`,
      });
    },
    BUDGET_MS + 60_000,
  );
});
