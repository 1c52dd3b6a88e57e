/**
 * The duration format of status, doctor and the problems they name, at the
 * boundaries where the unit changes, and the pattern the integration tests
 * match such durations with: it must accept whatever human() prints for any
 * duration, or a test fails by the second it happens to run in.
 */
import { describe, expect, it } from 'vitest';
import { human } from '../../../agent/report/status-text.js';
import { DURATION } from '../../helpers/duration.js';

describe('human()', () => {
  it('changes unit at the boundaries, rounding to the second first', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [0.4, '0s'],
      [59, '59s'],
      [59.5, '1m00s'],
      [60, '1m00s'],
      [61, '1m01s'],
      [3599, '59m59s'],
      [3599.4, '59m59s'],
      [3599.5, '1h00m'],
      [3600, '1h00m'],
      [3659, '1h00m'],
      [3660, '1h01m'],
      [7200, '2h00m'],
      [86399, '23h59m'],
      [86400, '1d0h'],
      [90000, '1d1h'],
      [10 * 86400 + 23 * 3600 + 3599, '10d23h'],
      [-3600, '1h00m'],
    ];
    expect(cases.map(([s]) => [s, human(s)])).toEqual(cases);
  });

  it('every duration it prints matches the tests’ duration pattern, and nothing else does', () => {
    const whole = new RegExp(`^${DURATION}$`);
    const missed: string[] = [];
    for (let s = 0; s <= 3 * 86400; s += s < 7300 ? 0.25 : 59)
      if (!whole.test(human(s))) missed.push(`${s}: ${human(s)}`);
    expect(missed).toEqual([]);
    // What a one-unit pattern would have missed: the allowance of a fresh 1-hour certificate.
    expect(human(3599.6)).not.toMatch(/^\d+m\d\ds$/);
    for (const bad of ['1h0m', '60s', '1m0s', '1h', 'h00m', '59m59']) expect(bad).not.toMatch(whole);
  });
});
