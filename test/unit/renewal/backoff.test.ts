/**
 * The one rule the daemon and timer mode share for whether a check runs a
 * pass: not before the next attempt recorded after a failure, unless the
 * operator asked (start, SIGHUP, a rewritten config file).
 */
import { describe, expect, it } from 'vitest';
import { checkDecision, checkDecisionOf } from '../../../agent/renewal/backoff.js';
import { emptyState, type AgentState } from '../../../agent/store/state.js';

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

describe('checkDecisionOf: several certificates, each with its own backoff', () => {
  const waiting = (nextAttempt?: string): AgentState => ({ ...emptyState(), ...(nextAttempt ? { nextAttempt } : {}) });
  const never = () => false;

  it('runs when any certificate may run now (the pass leaves the others alone)', () => {
    expect(checkDecisionOf([waiting('2026-12-02T13:00:00Z'), waiting()], now, never)).toEqual({ run: true });
    expect(checkDecisionOf([waiting('2026-12-02T13:00:00Z'), waiting('2026-12-02T11:00:00Z')], now, never)).toEqual({
      run: true,
    });
  });

  it('waits while every certificate backs off, until the earliest next attempt', () => {
    const states = [
      waiting('2026-12-02T14:00:00Z'),
      waiting('2026-12-02T12:30:00.000Z'),
      waiting('2026-12-02T13:00:00+00:00'),
    ];
    expect(checkDecisionOf(states, now, never)).toEqual({ run: false, nextAttempt: '2026-12-02T12:30:00.000Z' });
  });

  it('compares the moments, not the text of differently written times', () => {
    // 12:30 at +02:00 is 10:30Z, past: that one runs.
    expect(
      checkDecisionOf([waiting('2026-12-02T14:00:00Z'), waiting('2026-12-02T12:30:00+02:00')], now, never),
    ).toEqual({ run: true });
    const states = [waiting('2026-12-02T13:30:00Z'), waiting('2026-12-02T14:00:00+01:00')];
    expect(checkDecisionOf(states, now, never)).toEqual({ run: false, nextAttempt: '2026-12-02T14:00:00+01:00' });
  });

  it('runs when the operator asked for any one of the waiting certificates', () => {
    const a = waiting('2026-12-02T13:00:00Z');
    const b = waiting('2026-12-02T14:00:00Z');
    expect(checkDecisionOf([a, b], now, (s) => s === b)).toEqual({ run: true });
    expect(checkDecisionOf([a, b], now, () => true)).toEqual({ run: true });
  });

  it('runs with no certificates to wait for, and on an unreadable time', () => {
    expect(checkDecisionOf([], now, never)).toEqual({ run: true });
    expect(checkDecisionOf([waiting('2026-12-02T13:00:00Z'), waiting('garbage')], now, never)).toEqual({ run: true });
  });
});
