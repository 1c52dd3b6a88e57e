/**
 * The consumers' reloads of one pass: certificates of the same consumer are
 * reloaded once, together; a consumer that refuses some of the new sets
 * gets only those sets' previous ones back and is reloaded once more with
 * the rest; a check that fails for one set fails that certificate alone.
 * The `command` target runs for real (a script that counts its runs); the
 * refusals come from a stand-in for the command target's reload, since no
 * real consumer refuses on demand.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateConfig, type Config } from '../../../agent/config/config.js';
import { ReloadError } from '../../../agent/lib/errors.js';
import type { Logger } from '../../../agent/lib/log.js';
import { reloadTargets, type SetResult } from '../../../agent/reload/index.js';
import type { ReloadContext } from '../../../agent/reload/types.js';
import type { CertRun } from '../../../agent/renewal/context.js';
import { reloadConsumers } from '../../../agent/renewal/reload-group.js';
import type { CertStore, LiveSet } from '../../../agent/store/sets.js';
import { emptyState } from '../../../agent/store/state.js';
import { tempDir } from '../../helpers/agent.js';

const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const NOW = new Date('2026-12-07T12:00:00Z');

afterEach(() => vi.restoreAllMocks());

/** A script that appends CERT_AGENT_CERTIFICATES to a file on each run; `runs()` reads them. */
function countingScript(): { path: string; runs: () => string[] } {
  const dir = tempDir('reload-group-');
  const out = join(dir, 'runs');
  const path = join(dir, 'reload.sh');
  writeFileSync(out, '');
  writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' "$CERT_AGENT_CERTIFICATES" >> '${out}'\n`);
  chmodSync(path, 0o755);
  return { path, runs: () => readFileSync(out, 'utf8').split('\n').filter(Boolean) };
}

/** Views of certificates a, b, c..., each entry's fields as given. */
function configs(...entries: Record<string, unknown>[]): Config[] {
  const certificates = entries.map((e, i) => ({ name: 'abcdef'[i], domains: [`${'abcdef'[i]}.internal`], ...e }));
  return validateConfig({ ca: { url: 'https://ca.internal:9000', fingerprint: FP }, certificates }).certificates;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} };

/** A certificate of a pass that installed a new set and must have its consumer take it. */
function run(config: Config, serial: string, reload = true): CertRun & { rollbacks: () => number } {
  let rollbacks = 0;
  const store = { rollback: () => (rollbacks++, true) } as unknown as CertStore;
  const live = { cert: { serialNumber: serial, validTo: 'Dec  1 00:00:00 2027 GMT' } } as unknown as LiveSet;
  const state = emptyState();
  const ctx = {
    opts: { log: silent, config },
    config,
    log: silent,
    store,
    now: () => NOW,
    random: () => 0.5,
    state,
    repaired: [],
    shared: {},
  };
  return {
    ctx,
    state,
    acted: { result: { action: 'renewed', reason: 'due', live, nextRenewal: NOW }, reload },
    rollbacks: () => rollbacks,
  };
}

/** Replaces the command target's reload; each call's certificate names are kept. */
function fakeReload(answer: (names: string[], call: number) => SetResult[]): string[][] {
  const calls: string[][] = [];
  vi.spyOn(reloadTargets.command, 'reload').mockImplementation(async (ctx: ReloadContext) => {
    const names = ctx.sets.map((s) => s.config.certificate.name);
    calls.push(names);
    return answer(names, calls.length);
  });
  return calls;
}

const ok = (r: CertRun) => r.ctx.reloaded?.ok === true && r.acted?.result.reload !== undefined && !r.error;
const failed = (r: CertRun) => r.ctx.reloaded?.ok === false && r.acted === undefined && r.error instanceof ReloadError;

describe('one reload per consumer', () => {
  it('certificates with the same command are reloaded once, together, each recorded', async () => {
    const script = countingScript();
    const reload = { target: 'command', command: [script.path] };
    const runs = configs({ reload }, { reload }).map((c, i) => run(c, `0${i + 1}`));
    await reloadConsumers(runs);
    expect(script.runs()).toEqual(['a,b']);
    expect(runs.every(ok)).toBe(true);
    expect(runs[1]!.ctx.reloaded?.detail).toMatch(/exited 0/);
  });

  it('different commands are different consumers; a certificate without a new set is not reloaded', async () => {
    const one = countingScript();
    const two = countingScript();
    const runs = configs(
      { reload: { target: 'command', command: [one.path] } },
      { reload: { target: 'command', command: [two.path] } },
      { reload: { target: 'command', command: [one.path] } },
      { reload: { target: 'command', command: [one.path] } },
    ).map((c, i) => run(c, `0${i}`, i !== 3));
    await reloadConsumers(runs);
    expect(one.runs()).toEqual(['a,c']);
    expect(two.runs()).toEqual(['b']);
    expect(runs[3]!.ctx.reloaded).toBeUndefined();
    expect(runs[3]!.acted?.result.reload).toBeUndefined();
  });

  it('a failed reload fails every certificate of that consumer, without rollback, and no other consumer', async () => {
    const good = countingScript();
    const runs = configs(
      { reload: { target: 'command', command: ['false'] } },
      { reload: { target: 'command', command: ['false'] } },
      { reload: { target: 'command', command: [good.path] } },
    ).map((c, i) => run(c, `0${i}`));
    await reloadConsumers(runs);
    expect(runs.map((r) => [failed(r), r.rollbacks()])).toEqual([
      [true, 0],
      [true, 0],
      [false, 0],
    ]);
    expect(ok(runs[2]!)).toBe(true);
    expect(good.runs()).toEqual(['c']);
  });
});

describe('a consumer that refuses some of the new sets', () => {
  const reload = { target: 'command', command: ['true'] };

  it('restores only the refused set, and reloads once more with the rest', async () => {
    const runs = configs({ reload }, { reload }, { reload }).map((c, i) => run(c, `0${i}`));
    const calls = fakeReload((names, call) => {
      if (call === 1) throw new ReloadError('nginx -t refused b', { rollback: true, refused: ['b'] });
      return names.map(() => ({ detail: 'reloaded' }));
    });
    await reloadConsumers(runs);
    expect(calls).toEqual([
      ['a', 'b', 'c'],
      ['a', 'c'],
    ]);
    expect(runs.map((r) => r.rollbacks())).toEqual([0, 1, 0]);
    expect([ok(runs[0]!), failed(runs[1]!), ok(runs[2]!)]).toEqual([true, true, true]);
    expect(runs[1]!.ctx.reloaded?.detail).toMatch(/nginx -t refused b; the previous certificate set was restored/);
  });

  it('a refusal of all (no names) restores every set and reloads no more', async () => {
    const runs = configs({ reload }, { reload }).map((c, i) => run(c, `0${i}`));
    const calls = fakeReload(() => {
      throw new ReloadError('refused', { rollback: true });
    });
    await reloadConsumers(runs);
    expect(calls).toHaveLength(1);
    expect(runs.map((r) => [failed(r), r.rollbacks()])).toEqual([
      [true, 1],
      [true, 1],
    ]);
  });

  it('a refusal that names none of the certificates is a refusal of all of them', async () => {
    for (const refused of [[], ['zz']]) {
      const runs = configs({ reload }, { reload }).map((c, i) => run(c, `0${i}`));
      fakeReload(() => {
        throw new ReloadError('refused', { rollback: true, refused });
      });
      await reloadConsumers(runs);
      expect(runs.map((r) => [failed(r), r.rollbacks()])).toEqual([
        [true, 1],
        [true, 1],
      ]);
      vi.restoreAllMocks();
    }
  });

  it('refusals in turn leave no certificate recorded as taken that the consumer never took', async () => {
    const runs = configs({ reload }, { reload }, { reload }).map((c, i) => run(c, `0${i}`));
    const calls = fakeReload((names, call) => {
      if (call === 1) throw new ReloadError('refused c', { rollback: true, refused: ['c'] });
      if (call === 2) throw new ReloadError('refused b', { rollback: true, refused: ['b'] });
      return names.map(() => ({ detail: 'reloaded' }));
    });
    await reloadConsumers(runs);
    expect(calls).toEqual([['a', 'b', 'c'], ['a', 'b'], ['a']]);
    expect(runs.map((r) => r.rollbacks())).toEqual([0, 1, 1]);
    expect([ok(runs[0]!), failed(runs[1]!), failed(runs[2]!)]).toEqual([true, true, true]);
  });
});

describe('the check of each set', () => {
  it('a verify failure for one set fails only that certificate, with no rollback', async () => {
    const reload = { target: 'command', command: ['true'] };
    const runs = configs({ reload }, { reload }).map((c, i) => run(c, `0${i}`));
    fakeReload(() => [
      { detail: 'reloaded', servedSerial: '00' },
      new ReloadError('127.0.0.1:443 still serves serial ff, not 01'),
    ]);
    await reloadConsumers(runs);
    expect(ok(runs[0]!)).toBe(true);
    expect(runs[0]!.ctx.reloaded?.servedSerial).toBe('00');
    expect(failed(runs[1]!)).toBe(true);
    expect(runs[1]!.ctx.reloaded?.detail).toBe('127.0.0.1:443 still serves serial ff, not 01');
    expect(runs.map((r) => r.rollbacks())).toEqual([0, 0]);
  });
});
