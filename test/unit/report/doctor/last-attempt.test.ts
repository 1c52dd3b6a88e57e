import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLastAttempt } from '../../../../agent/report/doctor/last-attempt.js';
import { emptyState, writeState } from '../../../../agent/store/state.js';
import { doctorContext } from './fixture.js';

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

describe('doctor: last renewal', () => {
  it('says nothing before any attempt, the result of one, and the error of a failed one', () => {
    const ctx = doctorContext();
    dir = ctx.dir;
    expect(checkLastAttempt(ctx)).toEqual([]);
    writeState(ctx.config.stateDir, 'default', {
      ...emptyState(),
      lastAttempt: { at: '2026-01-01T00:00:00Z', result: 'not-due' },
    });
    expect(checkLastAttempt(ctx)).toEqual([
      { status: 'ok', reason: 'last renewal', message: 'the attempt at 2026-01-01T00:00:00Z: not-due' },
    ]);
    const failed = { at: '2026-01-02T00:00:00Z', result: 'failed' as const, error: 'self-check: refused' };
    writeState(ctx.config.stateDir, 'default', { ...emptyState(), lastAttempt: failed });
    expect(checkLastAttempt(ctx)).toEqual([
      {
        status: 'PROBLEM',
        reason: 'last renewal',
        message: 'the attempt at 2026-01-02T00:00:00Z failed: self-check: refused',
      },
    ]);
  });
});
