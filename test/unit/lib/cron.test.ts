/**
 * The daemon's cron schedule (agent/lib/cron.ts): the next moment for
 * the expressions operators write, the errors for the ones they get wrong,
 * and node-cron as the oracle: the library the agent used before, whose
 * matching every configuration already written was validated against.
 */
import cron from 'node-cron';
import { describe, expect, it } from 'vitest';
import { cronProblem, parseCron, type CronSchedule } from '../../../agent/lib/cron.js';

const schedule = (e: string) => {
  const s = parseCron(e);
  if (typeof s === 'string') throw new Error(`${e}: ${s}`);
  return s;
};
const at = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => new Date(y, mo - 1, d, h, mi, s);

describe('next', () => {
  it.each([
    ['*/5 * * * *', at(2026, 12, 2, 15, 3, 10), at(2026, 12, 2, 15, 5)],
    ['*/5 * * * *', at(2026, 12, 2, 15, 5), at(2026, 12, 2, 15, 10)],
    ['*/5 * * * *', at(2026, 12, 31, 23, 59, 59), at(2027, 1, 1, 0, 0)],
    ['* * * * * *', at(2026, 12, 2, 15, 3, 10), at(2026, 12, 2, 15, 3, 11)],
    ['*/2 * * * * *', at(2026, 12, 2, 15, 3, 11), at(2026, 12, 2, 15, 3, 12)],
    ['30 2 * * *', at(2026, 12, 2, 15), at(2026, 12, 3, 2, 30)],
    ['0 9 * * mon-fri', at(2026, 12, 4, 10), at(2026, 12, 7, 9)], // Friday after nine: Monday
    ['0 0 29 feb *', at(2026, 3, 1), at(2028, 2, 29)],
    ['0 12 1 jan,jul *', at(2026, 12, 2), at(2027, 1, 1, 12)],
    ['15/20 * * * *', at(2026, 12, 2, 15, 36), at(2026, 12, 2, 15, 55)],
    ['0 0 * * 7', at(2026, 12, 2), at(2026, 12, 6)], // 7 is Sunday
    ['0 0 * * 5-7', at(2026, 12, 5, 1), at(2026, 12, 6)],
    ['0 0 13 * 5', at(2026, 1, 1), at(2026, 2, 13)], // a Friday the 13th: both day fields must match
  ])('%s after %s', (expr, after, expected) => {
    expect(schedule(expr).next(after).getTime()).toBe(expected.getTime());
  });

  it('is strictly after the given moment, to the second, and drops milliseconds', () => {
    const s = schedule('* * * * * *');
    const t = new Date(Date.UTC(2026, 11, 2, 15, 0, 0, 999));
    expect(s.next(t).getTime()).toBe(Date.UTC(2026, 11, 2, 15, 0, 1));
  });
});

describe('daylight saving time (America/New_York)', () => {
  const withTz = <T>(tz: string, f: () => T): T => {
    const before = process.env.TZ;
    process.env.TZ = tz;
    try {
      return f();
    } finally {
      if (before === undefined) delete process.env.TZ;
      else process.env.TZ = before;
    }
  };

  it('moves forward through the repeated hour of the autumn change, never back', () => {
    // 2026-11-01: 01:00-02:00 local happens twice (EDT, then EST).
    withTz('America/New_York', () => {
      const s = schedule('*/5 * * * *');
      for (let t = Date.UTC(2026, 10, 1, 4, 30); t <= Date.UTC(2026, 10, 1, 7, 30); t += 60_000 + 7_000) {
        const next = s.next(new Date(t)).getTime();
        expect(next, new Date(t).toISOString()).toBeGreaterThan(t);
        expect(next - t, new Date(t).toISOString()).toBeLessThanOrEqual(5 * 60_000);
      }
      // 01:10 EST (the second 01:10) is followed by 01:15 EST, not by 01:15 EDT an hour earlier.
      expect(s.next(new Date(Date.UTC(2026, 10, 1, 6, 10))).toISOString()).toBe('2026-11-01T06:15:00.000Z');
    });
  });

  it('skips the missing hour of the spring change without looping', () => {
    withTz('America/New_York', () => {
      // 2026-03-08: 02:00-03:00 local does not exist.
      expect(
        schedule('*/5 * * * *')
          .next(new Date(Date.UTC(2026, 2, 8, 6, 58)))
          .toISOString(),
      ).toBe(
        '2026-03-08T07:00:00.000Z', // 03:00 EDT
      );
      expect(
        schedule('0 * * * *')
          .next(new Date(Date.UTC(2026, 2, 8, 6, 30)))
          .toISOString(),
      ).toBe('2026-03-08T07:00:00.000Z');
    });
  });
});

describe('errors name the field and what is allowed', () => {
  it.each([
    ['* * *', /3 fields; expected 5/],
    ['61 * * * *', /minute 61 is out of range 0-59/],
    ['every minute', /2 fields/],
    ['*/0 * * * *', /step "0" must be 1 or more/],
    ['* * * * 8', /day of week 8 is out of range 0-7/],
    ['* * * * * * *', /7 fields/],
    ['', /0 fields/],
    ['0 0 31 2 *', /never matches/],
    ['5-1 * * * *', /runs backwards/],
    ['* * * foo *', /month "foo" is not a number or a name/],
    ['L * * * *', /minute "L" is not a number/],
  ])('%j', (expr, message) => {
    expect(cronProblem(expr)).toMatch(message);
  });
});

describe('node-cron as the oracle', () => {
  const corpus = [
    '*/5 * * * *',
    '* * * * *',
    '* * * * * *',
    '*/7 * * * * *',
    '0 */2 * * *',
    '15,45 8-18 * * 1-5',
    '0 0 1 * *',
    '30 3 * * sun',
    '0 0 * jan-mar mon',
    '10-40/10 * * * *',
    '0 12 15 6 *',
    '0 0 * * 0,7',
  ];
  // A fixed walk of moments over two years, in this machine's local time.
  const moments: Date[] = [];
  for (let i = 0, t = Date.UTC(2026, 0, 1); i < 4000; i++, t += 4 * 3600_000 + 37 * 60_000 + 13_000) {
    moments.push(new Date(t));
  }

  it.each(corpus)('%s: same validity, same matches, and next is the first match node-cron agrees with', (expr) => {
    expect(cron.validate(expr)).toBe(true);
    const ours: CronSchedule = schedule(expr);
    const theirs = cron.createTask(expr, () => undefined);
    try {
      for (const m of moments) expect(ours.matches(m), `${expr} at ${m.toString()}`).toBe(theirs.match(m));
      for (const m of moments.slice(0, 30)) {
        const next = ours.next(m);
        expect(theirs.match(next), `${expr}: next(${m.toString()}) = ${next.toString()}`).toBe(true);
        // Nothing node-cron matches in between (the first day after, to the minute for five fields).
        const stride = expr.split(' ').length === 6 ? 1000 : 60_000;
        const start = Math.floor(m.getTime() / stride) * stride + stride;
        for (let t = start; t < next.getTime() && t < start + 86_400_000; t += stride)
          expect(theirs.match(new Date(t)), `${expr} matches ${new Date(t).toString()} before ${next.toString()}`).toBe(
            false,
          );
      }
    } finally {
      void theirs.destroy();
    }
  });

  it('rejects what node-cron rejects', () => {
    for (const expr of ['* * *', '61 * * * *', 'every minute', '* * * * 8', '* * * * * * *', '', '*/0 * * * *'])
      expect([expr, cron.validate(expr), cronProblem(expr) === undefined]).toEqual([expr, false, false]);
  });
});
