/**
 * The one rule the daemon and timer mode share for whether a check runs a
 * pass: not before the next attempt recorded after a failure, unless the
 * operator asked (start, SIGHUP, a rewritten config file).
 */
import { describe, expect, it } from 'vitest';
import { checkDecision } from '../../../agent/renewal/backoff.js';

const now = new Date('2026-12-02T12:00:00Z');

describe('checkDecision', () => {
  it('runs when no retry is pending', () => {
    expect(checkDecision(undefined, now)).toEqual({ run: true });
  });

  it('does nothing before the next attempt, and runs from that moment on', () => {
    expect(checkDecision('2026-12-02T12:00:00.001Z', now)).toEqual({
      run: false,
      nextAttempt: '2026-12-02T12:00:00.001Z',
    });
    expect(checkDecision('2026-12-02T12:00:00.000Z', now)).toEqual({ run: true });
    expect(checkDecision('2026-12-02T11:59:00.000Z', now)).toEqual({ run: true });
  });

  it('runs before the next attempt when the operator asked', () => {
    expect(checkDecision('2026-12-02T13:00:00Z', now, true)).toEqual({ run: true });
  });

  it('runs on an unreadable retry time rather than never again', () => {
    expect(checkDecision('not a date', now)).toEqual({ run: true });
  });
});
