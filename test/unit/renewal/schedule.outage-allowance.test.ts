/**
 * The CA-outage allowance as pure functions of the certificate, the policy,
 * the clock and a fixed random: from now until expiry, what the schedule
 * leaves on a normal day, the least any certificate of a lifetime gets, the
 * warning threshold, and renewal.minAllowance's validation.
 */
import { describe, expect, it } from 'vitest';
import { allowanceThresholdMs, leastNormalDayAllowanceMs, outageAllowance } from '../../../agent/renewal/schedule.js';
import { parseDurationSeconds } from '../../../agent/config/values.js';
import { validateConfig } from '../../../agent/config/config.js';
import { ConfigError } from '../../../agent/lib/errors.js';

const H = 3_600_000;
const issued = new Date('2026-12-01T00:00:00Z');
const day = { notBefore: issued, notAfter: new Date(issued.getTime() + 24 * H) };

describe('outageAllowance', () => {
  it('is expiry minus now, and expiry minus the renewal time on a normal day', () => {
    const now = new Date(issued.getTime() + 2 * H);
    const a = outageAllowance(day, { at: 0.66, jitter: 0.05 }, () => 0.5, now);
    expect(a.fromNowMs).toBe(22 * H);
    // renewal at 0.66 - 0.05 * 0.5 = 0.635 of 24 h; 0.365 of it is left.
    expect(a.normalDayMs).toBeCloseTo(0.365 * 24 * H, 0);
    expect(a.lifetimeMs).toBe(24 * H);
  });

  it('never goes negative once expired', () => {
    const later = new Date(issued.getTime() + 30 * H);
    expect(outageAllowance(day, { at: 0.66, jitter: 0 }, () => 0, later).fromNowMs).toBe(0);
  });

  it('least normal-day allowance: the jitter drawn at 0', () => {
    expect(leastNormalDayAllowanceMs(24 * H, { at: 0.66, jitter: 0.05 })).toBeCloseTo(0.34 * 24 * H, 0);
    // 1-hour certificates renewed at 0.95 leave three minutes.
    expect(leastNormalDayAllowanceMs(H, { at: 0.95, jitter: 0 })).toBeCloseTo(3 * 60_000, 0);
  });

  it('threshold: a share of the lifetime or a fixed duration', () => {
    expect(allowanceThresholdMs({ share: 0.25 }, 24 * H)).toBe(6 * H);
    expect(allowanceThresholdMs({ seconds: 5400 }, 24 * H)).toBe(1.5 * H);
  });

  it('parses durations and refuses anything else', () => {
    expect(parseDurationSeconds('6h')).toBe(21600);
    expect(parseDurationSeconds('1h30m')).toBe(5400);
    expect(parseDurationSeconds('2d')).toBe(172800);
    expect(parseDurationSeconds('45s')).toBe(45);
    for (const bad of ['', '0h', '6 hours', 'h', '-1h', '1.5h']) expect(parseDurationSeconds(bad)).toBeUndefined();
  });
});

describe('renewal.minAllowance', () => {
  const base = {
    ca: { url: 'https://ca.internal:9000', fingerprint: 'a'.repeat(64) },
    certificate: { domains: ['app.internal'] },
  };
  const withRenewal = (renewal: Record<string, unknown>) => validateConfig({ ...base, renewal });

  it('defaults to a quarter of the lifetime', () => {
    expect(withRenewal({}).renewal.minAllowance).toEqual({ share: 0.25 });
  });

  it('takes a share below 1 - renewal.at, or a duration', () => {
    expect(withRenewal({ minAllowance: 0.1 }).renewal.minAllowance).toEqual({ share: 0.1 });
    expect(withRenewal({ minAllowance: '6h' }).renewal.minAllowance).toEqual({ seconds: 21600 });
  });

  it('with renewal.at above 0.75, defaults to half of what the schedule leaves', () => {
    expect(withRenewal({ at: 0.9, jitter: 0 }).renewal.minAllowance).toEqual({ share: 0.05 });
  });

  for (const [what, value, at] of [
    ['a share the schedule never leaves', 0.4, 0.66],
    ['zero', 0, 0.66],
    ['a negative share', -0.1, 0.66],
    ['a word', 'soon', 0.66],
    ['a duration with a space', '6 h', 0.66],
    ['a list', [1], 0.66],
  ] as const) {
    it(`refuses ${what}, naming the field and what is allowed`, () => {
      let error: unknown;
      try {
        withRenewal({ at, minAllowance: value });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(
        /renewal\.minAllowance: .* is not allowed; use a share of the lifetime above 0 and below 1 - renewal\.at \(0\.34/,
      );
      expect((error as Error).message).toMatch(/, or a duration such as 6h/);
    });
  }
});
