/**
 * 1000 agents over 24 hours of 24-hour certificates, simulated with the
 * agent's own schedule functions (agent/renewal/schedule.ts: nextRenewal with the
 * per-serial random of randomForSerial), with and without jitter. Each
 * certificate is modelled as step-ca issues it: notBefore backdated one
 * minute, notAfter 24 h after issuance; each agent renews exactly when its
 * schedule says (the daemon arms a timer for that moment). Scenarios:
 * "enrolled at once" (all first certificates within one minute: a fleet
 * rolled out, or every container restarted after a CA recovery) and
 * "staggered" (first certificates spread over a day).
 */
import { randomBytes } from 'node:crypto';
import { nextRenewal, randomForSerial, type RenewalPolicy } from '../../agent/renewal/schedule.js';

export interface SimRow {
  scenario: string;
  jitter: number;
  hours: number;
  renewals: number;
  maxPerMinute: number;
  maxPerSecond: number;
  /** busiest minute's start, hours since the simulation began */
  busiestAtH: number;
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const LIFETIME_EXTRA = MIN; // step-ca backdates notBefore by one minute

function simulate(
  agents: number,
  hours: number,
  policy: RenewalPolicy,
  firstIssue: (i: number) => number,
): Omit<SimRow, 'scenario' | 'jitter' | 'hours'> {
  const end = hours * HOUR;
  const perMinute = new Map<number, number>();
  const perSecond = new Map<number, number>();
  let renewals = 0;
  for (let i = 0; i < agents; i++) {
    let issuedAt = firstIssue(i);
    for (;;) {
      const serial = randomBytes(16).toString('hex').toUpperCase();
      const cert = { notBefore: new Date(issuedAt - LIFETIME_EXTRA), notAfter: new Date(issuedAt + 24 * HOUR) };
      const at = nextRenewal(cert, policy, randomForSerial(serial)).getTime();
      if (at >= end) break;
      issuedAt = at;
      if (at < 0) continue; // before the simulated window (staggered start)
      renewals++;
      perMinute.set(Math.floor(at / MIN), (perMinute.get(Math.floor(at / MIN)) ?? 0) + 1);
      perSecond.set(Math.floor(at / 1000), (perSecond.get(Math.floor(at / 1000)) ?? 0) + 1);
    }
  }
  let busiest = 0;
  let busiestAt = 0;
  for (const [m, n] of perMinute) if (n > busiest) [busiest, busiestAt] = [n, m];
  return {
    renewals,
    maxPerMinute: busiest,
    maxPerSecond: Math.max(0, ...perSecond.values()),
    busiestAtH: (busiestAt * MIN) / HOUR,
  };
}

export function simulateSection(agents = 1000): SimRow[] {
  const rows: SimRow[] = [];
  const scenarios: [string, (i: number) => number][] = [
    ['enrolled at once (first certificates within 1 min)', () => Math.random() * MIN],
    ['staggered (first certificates spread over 24 h)', () => -Math.random() * 24 * HOUR],
  ];
  for (const [name, first] of scenarios) {
    for (const hours of [24, 24 * 7]) {
      for (const jitter of [0, 0.05]) {
        rows.push({ scenario: name, jitter, hours, ...simulate(agents, hours, { at: 0.66, jitter }, first) });
      }
    }
  }
  return rows;
}
