/**
 * dns-01's wait against authoritative servers in the test process
 * (test/helpers/fake-dns.ts): the configured server on 127.0.0.1 and a second
 * one on 127.0.0.2:53 — the port the client gives every NS address but the
 * configured server's, so that one needs root. Each test says what each
 * server answers to the TXT query, round by round; the wait's pauses are
 * injected and its clock is virtual, so a wait that runs out costs no time.
 * The findings must name the server that is wrong, say what it answered, and
 * leave out the servers that are right.
 */
import { setTimeout as realSleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Lookup } from '../../../agent/challenge/dns-authorities.js';
import { findingsFor, waitForRecord } from '../../../agent/challenge/dns-wait.js';
import { ChallengeError } from '../../../agent/lib/errors.js';
import { RCODE, startFakeDns, type FakeDns, type FakeZone } from '../../helpers/fake-dns.js';

const ZONE = 'wait.test';
const NAME = `_acme-challenge.app.${ZONE}`;
const VALUE = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const asRoot = process.getuid?.() === 0;

const zone: FakeZone = { zone: ZONE, ns: {} };
let one: FakeDns;
let two: FakeDns | undefined;
let lookup: Lookup;

/** The virtual clock the wait reads, and the pauses it asked for. */
let now = 0;
let slept: number[] = [];
const sleep = (ms: number) => {
  slept.push(ms);
  now += ms;
  return Promise.resolve();
};

const right = () => ({ texts: [[VALUE]] });

beforeAll(async () => {
  one = await startFakeDns(zone, '127.0.0.1');
  if (asRoot) two = await startFakeDns(zone, '127.0.0.2', 53);
  lookup = { server: { host: one.host, port: one.port }, recursive: false };
});
afterAll(async () => {
  await one.close();
  await two?.close();
});
beforeEach(() => {
  zone.ns = { [`ns1.${ZONE}`]: '127.0.0.1', ...(two ? { [`ns2.${ZONE}`]: '127.0.0.2' } : {}) };
  one.onTxt = right;
  if (two) two.onTxt = right;
  one.txtQueries.length = 0;
  if (two) two.txtQueries.length = 0;
  now = 1_000_000;
  slept = [];
  vi.spyOn(Date, 'now').mockImplementation(() => now);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  one.afterTxt = undefined;
  if (two) two.afterTxt = undefined;
});

async function failure(timeoutSeconds = 3): Promise<ChallengeError> {
  const err = await waitForRecord(lookup, NAME, VALUE, timeoutSeconds, undefined, sleep).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChallengeError);
  return err as ChallengeError;
}

describe('one server (no root needed)', () => {
  it('the value answered with authority: resolves at once, and findingsFor is empty', async () => {
    zone.ns = { [`ns1.${ZONE}`]: '127.0.0.1' };
    await waitForRecord(lookup, NAME, VALUE, 5, undefined, sleep);
    expect(slept).toEqual([]);
    expect((await findingsFor(lookup, NAME, VALUE)).findings).toEqual([]);
    expect((await findingsFor({ ...lookup, zone: ZONE }, NAME, VALUE)).findings).toEqual([]);
  });

  it('the value among other records, split into several strings, under an owner name in upper case', async () => {
    zone.ns = { [`ns1.${ZONE}`]: '127.0.0.1' };
    one.onTxt = () => ({ texts: [['older'], [VALUE.slice(0, 10), VALUE.slice(10)]], owner: NAME.toUpperCase() });
    expect((await findingsFor(lookup, NAME, VALUE)).findings).toEqual([]);
  });

  it('a silent server: "did not answer", named, after each try ran out (timers advanced, not waited)', async () => {
    zone.ns = { [`ns1.${ZONE}`]: '127.0.0.1' };
    vi.restoreAllMocks();
    one.onTxt = () => ({ silent: true });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // Each try's timer exists once the query arrived: run it out.
    one.afterTxt = () => void realSleep(20).then(() => vi.advanceTimersByTime(2000));
    const err = await waitForRecord(lookup, NAME, VALUE, 1, undefined, (ms) => {
      vi.advanceTimersByTime(ms);
      return Promise.resolve();
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChallengeError);
    expect((err as Error).message).toContain(`ns1.${ZONE} (127.0.0.1:${one.port}) did not answer`);
    expect(one.txtQueries.length).toBe(2);
  });
});

describe.skipIf(!asRoot)('two authoritative servers (needs root: the second listens on port 53)', () => {
  const second = () => two as FakeDns;

  it('both answer the value: resolves after one round', async () => {
    await waitForRecord(lookup, NAME, VALUE, 5, undefined, sleep);
    expect(slept).toEqual([]);
    expect([one.txtQueries.length, second().txtQueries.length]).toEqual([1, 1]);
    expect((await findingsFor(lookup, NAME, VALUE)).findings).toEqual([]);
  });

  it('a server with two addresses is ready when one answers: the other (nothing listens there) is not waited for', async () => {
    zone.ns = { [`ns1.${ZONE}`]: '127.0.0.1', [`ns2.${ZONE}`]: ['127.0.0.3', '127.0.0.2'] };
    await waitForRecord(lookup, NAME, VALUE, 5, undefined, sleep);
    expect(slept).toEqual([]);
    expect(second().txtQueries.length).toBe(1);
    // Were both needed, 127.0.0.3 would keep it waiting until the time ran out.
    second().onTxt = () => ({ rcode: RCODE.NXDOMAIN });
    const err = await failure(1);
    expect(err.message).toMatch(
      /ns2\.wait\.test \(127\.0\.0\.3:53\) is unreachable.*; ns2\.wait\.test \(127\.0\.0\.2:53\) answered NXDOMAIN/,
    );
  });

  it('one answers NXDOMAIN twice, then the value: the wait polls it alone and resolves', async () => {
    second().onTxt = (_, n) => (n < 2 ? { rcode: RCODE.NXDOMAIN } : right());
    await waitForRecord(lookup, NAME, VALUE, 60, undefined, sleep);
    expect(slept.length).toBe(2);
    expect(second().txtQueries.length).toBe(3);
    expect(one.txtQueries.length).toBe(1);
  });

  const cases: [string, () => ReturnType<FakeDns['onTxt']>, RegExp][] = [
    ['NXDOMAIN', () => ({ rcode: RCODE.NXDOMAIN }), /answered NXDOMAIN for _acme-challenge\.app\.wait\.test/],
    [
      'another value',
      () => ({ texts: [['x']] }),
      /answered TXT "x" at _acme-challenge\.app\.wait\.test, not the value/,
    ],
    ['no authority', () => ({ ...right(), aa: false }), /answered without authority for wait\.test/],
    ['REFUSED', () => ({ rcode: RCODE.REFUSED }), /answered REFUSED: it does not serve wait\.test/],
    ['no TXT record', () => ({ texts: [] }), /answered no TXT record at _acme-challenge\.app\.wait\.test/],
    ['SERVFAIL', () => ({ rcode: RCODE.SERVFAIL }), /answered SERVFAIL for _acme-challenge\.app\.wait\.test TXT/],
  ];
  for (const [what, reply, said] of cases) {
    it(`one never has it (${what}): ChallengeError after the timeout naming it alone`, async () => {
      second().onTxt = reply;
      const err = await failure(3);
      expect(now - 1_000_000).toBeLessThanOrEqual(3000);
      expect(second().txtQueries.length).toBeGreaterThan(2);
      expect(one.txtQueries.length).toBe(1);
      expect(err.message).toContain(`ns2.${ZONE} (127.0.0.2:53) `);
      expect(err.message).toMatch(said);
      expect(err.message).toContain('within 3s (challenge.dns.propagationTimeout)');
      expect(err.message).not.toContain('ns1.');
      expect(err.message).not.toContain('\n');
      const { findings } = await findingsFor(lookup, NAME, VALUE);
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatch(said);
    });
  }

  it('the zone and its servers looked up through a recursive resolver (which refuses queries without RD)', async () => {
    const resolver = await startFakeDns({ zone: ZONE, ns: { [`ns2.${ZONE}`]: '127.0.0.2' } }, '127.0.0.1');
    resolver.recursive = true;
    try {
      const through = { server: { host: resolver.host, port: resolver.port }, recursive: true };
      await waitForRecord(through, NAME, VALUE, 5, undefined, sleep);
      expect(second().txtQueries).toEqual([NAME]);
      expect(resolver.txtQueries).toEqual([]);
      second().onTxt = () => ({ rcode: RCODE.NXDOMAIN });
      expect((await findingsFor(through, NAME, VALUE)).findings).toEqual([
        `ns2.${ZONE} (127.0.0.2:53) answered NXDOMAIN for ${NAME}: the record is not in its copy of ${ZONE} (not updated yet, or it serves another copy)`,
      ]);
    } finally {
      await resolver.close();
    }
  });

  it('an NS address where nothing listens: "unreachable", named', async () => {
    zone.ns = { ...zone.ns, [`ns3.${ZONE}`]: '127.0.0.3' };
    const err = await failure(1);
    expect(err.message).toContain(`ns3.${ZONE} (127.0.0.3:53) is unreachable from here`);
    expect(err.message).not.toMatch(/ns[12]\./);
  });

  it('a silent second server: "did not answer", the first one not named', async () => {
    vi.restoreAllMocks();
    second().onTxt = () => ({ silent: true });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    second().afterTxt = () => void realSleep(50).then(() => vi.advanceTimersByTime(2000));
    const err = await waitForRecord(lookup, NAME, VALUE, 1, undefined, (ms) => {
      vi.advanceTimersByTime(ms);
      return Promise.resolve();
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChallengeError);
    expect((err as Error).message).toMatch(new RegExp(`: ns2\\.${ZONE} \\(127\\.0\\.0\\.2:53\\) did not answer$`));
  });
});
