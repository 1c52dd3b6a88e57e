/**
 * The dns-01 benchmark's readings of two logs: bind9's (which query was a
 * tool's first check, which the CA's, per added record) and the agent's
 * with preloaded marks (its wall time cut into stretches that must add up
 * to the run). Wrong readings would put the wait in the wrong column.
 */
import { describe, expect, it } from 'vitest';
import { recordTimes, splitAgentRun, STRETCHES } from '../../../bench/sections/dns01-marks.js';

const REC = '_acme-challenge.bench.dns.internal';
const add = (t: string) =>
  `07-Dec-2026 22:23:${t} client @0x1 127.0.0.1#35790/key k: updating zone 'dns.internal/IN': adding an RR at '${REC}' TXT "v"`;
const del = (t: string) =>
  `07-Dec-2026 22:23:${t} client @0x1 127.0.0.1#35790/key k: updating zone 'dns.internal/IN': deleting an RR at ${REC} TXT`;
const q = (t: string, name = REC) =>
  `07-Dec-2026 22:23:${t} client @0x2 127.0.0.1#41375 (${name}): query: ${name} IN TXT -E(0)K (127.0.0.1)`;

describe('recordTimes: bind9 log', () => {
  it('per added record: first query after it and the last before the next update', () => {
    const log = [
      add('51.000'),
      q('51.004', 'other.dns.internal'),
      q('51.010'),
      q('51.030'),
      q('51.042'),
      add('52.000'),
      q('54.003'),
      q('54.020'),
      del('54.100'),
      q('54.200'),
    ].join('\n');
    expect(recordTimes(log, REC)).toEqual([
      { checkMs: 10, caMs: 42 },
      { checkMs: 2003, caMs: 2020 },
    ]);
  });

  it('a record nobody asked for gives nothing; lines of another shape are skipped', () => {
    expect(recordTimes(['garbage', add('51.000'), del('51.500')].join('\n'), REC)).toEqual([]);
  });
});

const line = (ms: number, event: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ time: new Date(1_000_000 + ms).toISOString(), event, ...extra });

describe('splitAgentRun: the agent log with marks', () => {
  it('cuts the run into stretches that add up to its wall time, the wait apart', () => {
    const stderr = [
      line(50, 'renewal_started'),
      line(55, 'mark_http_request', { path: '/acme/new-order' }),
      line(70, 'mark_dns_query'),
      line(72, 'mark_dns_update'),
      line(80, 'dns_record_published'),
      line(81, 'mark_dns_query'),
      line(84, 'mark_http_request', { path: '/acme/challenge/1' }),
      line(90, 'mark_dns_update'),
      line(95, 'dns_record_published'),
      line(101, 'mark_http_request', { path: '/acme/challenge/2' }),
      line(110, 'mark_dns_update'),
      line(115, 'mark_http_request', { path: '/acme/finalize' }),
      line(130, 'mark_http_answer', { path: '/acme/certificate/9' }),
      line(142, 'certificate_installed'),
      'not json',
    ].join('\n');
    const s = splitAgentRun(stderr, 1_000_000, 150);
    expect(s.waitsMs).toEqual([4, 6]);
    expect(s.ms).toEqual({
      'start-up': 50,
      ACME: 20 + 6 + 9 + 15,
      'DNS update': 10 + 5 + 5,
      wait: 10,
      install: 12,
      exit: 8,
    });
    expect(STRETCHES.reduce((sum, k) => sum + s.ms[k], 0)).toBe(150);
  });
});
