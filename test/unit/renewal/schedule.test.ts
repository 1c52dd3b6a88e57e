/**
 * schedule.ts with a fake clock and a fixed random: when renewal falls due,
 * how retries grow and where they are capped. (That a clock jump, a frozen
 * container waking up, makes a renewal due at once is the decision's:
 * test/unit/renewal/decide.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { BACKOFF, nextRenewal, randomForSerial, retryDelay } from '../../../agent/renewal/schedule.js';

const H = 3_600_000;
const T0 = new Date('2026-03-01T00:00:00Z');
const day = { notBefore: T0, notAfter: new Date(T0.getTime() + 24 * H) };
const policy = { at: 0.66, jitter: 0.05 };
const fixed = (x: number) => () => x;

describe('nextRenewal', () => {
  it('is notBefore + lifetime × at when the random draw is 0', () => {
    expect(nextRenewal(day, policy, fixed(0)).getTime()).toBe(T0.getTime() + 0.66 * 24 * H);
  });
  it('moves earlier by up to jitter × lifetime', () => {
    expect(nextRenewal(day, policy, fixed(0.5)).getTime()).toBe(T0.getTime() + (0.66 - 0.025) * 24 * H);
    const latestJitter = nextRenewal(day, policy, fixed(0.9999999)).getTime();
    expect(latestJitter).toBeGreaterThanOrEqual(T0.getTime() + 0.61 * 24 * H - 1);
    expect(latestJitter).toBeLessThan(T0.getTime() + 0.6101 * 24 * H);
  });
  it('treats an out-of-range or NaN random as the edge, never leaving the window', () => {
    expect(nextRenewal(day, policy, fixed(Number.NaN)).getTime()).toBe(T0.getTime() + 0.66 * 24 * H);
    expect(nextRenewal(day, policy, fixed(-3)).getTime()).toBe(T0.getTime() + 0.66 * 24 * H);
    expect(nextRenewal(day, policy, fixed(7)).getTime()).toBeGreaterThan(T0.getTime() + 0.6099 * 24 * H);
  });
  it('scales with the lifetime (minutes-long certificates too)', () => {
    const fiveMin = { notBefore: T0, notAfter: new Date(T0.getTime() + 5 * 60_000) };
    expect(nextRenewal(fiveMin, { at: 0.5, jitter: 0 }, fixed(0.3)).getTime()).toBe(T0.getTime() + 150_000);
  });
});

describe('randomForSerial', () => {
  it('gives the same draw for the same serial and different draws across serials', () => {
    expect(randomForSerial('0a1b')()).toBe(randomForSerial('0a1b')());
    const draws = new Set(['01', '02', '03', '04', '05', '06'].map((s) => randomForSerial(s)()));
    expect(draws.size).toBe(6);
    for (const d of draws) expect(d >= 0 && d < 1).toBe(true);
  });
});

describe('retryDelay', () => {
  const now = new Date(T0.getTime() + 16 * H); // 8 h left
  it('starts at 30 s and doubles with each step (random 0 = half of it, random ~1 = all of it)', () => {
    const full = (step: number) => retryDelay(step, day, now, fixed(0.999999));
    expect(retryDelay(0, day, now, fixed(0))).toBe(15_000);
    expect(full(0)).toBeCloseTo(30_000, -1);
    expect(full(1)).toBeCloseTo(60_000, -1);
    expect(full(2)).toBeCloseTo(120_000, -1);
    expect(full(5)).toBeCloseTo(960_000, -1);
  });
  it('is capped at 1 h when much time is left, whatever the step', () => {
    const long = { notBefore: T0, notAfter: new Date(T0.getTime() + 90 * 24 * H) };
    expect(retryDelay(40, long, now, fixed(0.999999))).toBeLessThanOrEqual(BACKOFF.maxCapMs);
    expect(retryDelay(40, long, now, fixed(0.999999))).toBeGreaterThan(BACKOFF.maxCapMs - 10);
  });
  it('is capped at a quarter of the time left, so several tries still fit before expiry', () => {
    const late = new Date(day.notAfter.getTime() - 20 * 60_000); // 20 min left
    const d = retryDelay(30, day, late, fixed(0.999999));
    expect(d).toBeLessThanOrEqual(5 * 60_000);
    expect(d).toBeGreaterThan(5 * 60_000 - 10);
  });
  it('never goes below 30 s as the cap, even seconds before expiry', () => {
    const last = new Date(day.notAfter.getTime() - 10_000);
    expect(retryDelay(30, day, last, fixed(0.999999))).toBeCloseTo(30_000, -1);
  });
  it('keeps retrying often (5 s doubling to a 60 s cap) after expiry and with no certificate', () => {
    const after = new Date(day.notAfter.getTime() + 5 * H);
    for (const cert of [day, undefined]) {
      expect(retryDelay(0, cert, after, fixed(0.999999))).toBeCloseTo(BACKOFF.unusableFirstMs, -1);
      const d = retryDelay(20, cert, after, fixed(0.999999));
      expect(d).toBeLessThanOrEqual(BACKOFF.unusableCapMs);
      expect(d).toBeGreaterThan(BACKOFF.unusableCapMs - 10);
      expect(retryDelay(20, cert, after, fixed(0))).toBe(BACKOFF.unusableCapMs / 2);
    }
  });
  it('starts from lifetime/200 for short certificates (about 1 s for a 5-minute one)', () => {
    const short = { notBefore: T0, notAfter: new Date(T0.getTime() + 5 * 60_000) };
    const at = new Date(T0.getTime() + 60_000);
    expect(retryDelay(0, short, at, fixed(0.999999))).toBeCloseTo(1_500, -1);
    // cap: a quarter of the 4 min left
    expect(retryDelay(30, short, at, fixed(0.999999))).toBeCloseTo(60_000, -1);
  });
  it('spreads a fleet: different random draws give different delays at the same step', () => {
    const delays = new Set([0, 0.25, 0.5, 0.75].map((r) => retryDelay(3, day, now, fixed(r))));
    expect(delays.size).toBe(4);
  });
});
