/**
 * What a pass leaves in state.json (agent/renewal/record.ts): the state after
 * a success and after a failure, each a new object (the previous state is
 * never changed), with the clock and the random source injected.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { CaUnavailableError, ReloadError, StoreError, TrustError } from '../../../agent/lib/errors.js';
import { afterFailure, afterSuccess, clockSkewed, withPlaceholder } from '../../../agent/renewal/record.js';
import { BACKOFF } from '../../../agent/renewal/schedule.js';
import { emptyState, type AgentState } from '../../../agent/store/state.js';
import { makeCa } from '../../helpers/certs.js';

const HOUR = 3600_000;
const NOT_BEFORE = new Date('2026-03-01T00:00:00Z');
const NOT_AFTER = new Date(NOT_BEFORE.getTime() + 24 * HOUR);
const policy = { at: 0.5, jitter: 0 };
const half = () => 0.5;
let cert: X509Certificate;

beforeAll(async () => {
  const ca = await makeCa('Record');
  cert = new X509Certificate(
    (await ca.leaf({ domains: ['app.internal'], notBefore: NOT_BEFORE, notAfter: NOT_AFTER })).pem,
  );
});

const frozen = (state: AgentState) =>
  Object.freeze({ ...state, lastAttempt: state.lastAttempt && Object.freeze(state.lastAttempt) });
const failing = (): AgentState => ({
  ...emptyState(),
  consecutiveFailures: 2,
  backoffStep: 2,
  nextAttempt: '2026-03-01T05:00:00.000Z',
  lastSuccess: '2026-02-28T00:00:00.000Z',
});

describe('afterSuccess', () => {
  const now = new Date(NOT_BEFORE.getTime() + 1000);
  type Row = [string, 'renewed' | 'not-due', Partial<AgentState>];
  const rows: Row[] = [
    ['renewed: failures and backoff reset, lastSuccess now', 'renewed', { lastSuccess: now.toISOString() }],
    ['not due: lastSuccess kept', 'not-due', { lastSuccess: '2026-02-28T00:00:00.000Z' }],
  ];
  it.each(rows)('%s', (_name, action, expected) => {
    const before = frozen(failing());
    const live = { cert, placeholder: false };
    const next = afterSuccess(
      before,
      { action, live, nextRenewal: new Date(NOT_BEFORE.getTime() + 12 * HOUR) },
      now,
      half,
    );
    expect(next).not.toBe(before);
    expect(before.consecutiveFailures).toBe(2);
    expect(next).toMatchObject({
      consecutiveFailures: 0,
      backoffStep: 0,
      lastAttempt: { at: now.toISOString(), result: action },
      nextRenewal: '2026-03-01T12:00:00.000Z',
      placeholder: false,
      trust: { ok: true, checkedAt: now.toISOString() },
      ...expected,
    });
    expect(next.nextAttempt).toBeUndefined();
  });

  it('keeps the reload record of the pass and the config digest it ran with', () => {
    const reload = { target: 'nginx', at: now.toISOString(), ok: true, detail: 'reloaded' };
    const success = {
      action: 'not-due' as const,
      live: { cert, placeholder: false },
      nextRenewal: NOT_AFTER,
      reload,
      configSha256: 'ab',
    };
    expect(afterSuccess(emptyState(), success, now, half)).toMatchObject({ reload, configSha256: 'ab' });
  });

  it('backs off after a certificate that is already due by our clock (clocks disagree)', () => {
    const late = new Date(NOT_BEFORE.getTime() + 13 * HOUR);
    const success = {
      action: 'renewed' as const,
      live: { cert, placeholder: false },
      nextRenewal: new Date(NOT_BEFORE.getTime() + 12 * HOUR),
    };
    expect(clockSkewed(success, late)).toBe(true);
    expect(clockSkewed({ ...success, action: 'not-due' }, late)).toBe(false);
    expect(clockSkewed(success, new Date(NOT_BEFORE.getTime() + HOUR))).toBe(false);
    const next = afterSuccess({ ...emptyState(), backoffStep: 1 }, success, late, half);
    expect(next.backoffStep).toBe(2);
    const delay = Date.parse(next.nextAttempt ?? '') - late.getTime();
    // step 1 of a 24 h certificate: first 30 s doubled, half of it fixed and half at random (0.5).
    expect(delay).toBe(Math.round((BACKOFF.maxFirstMs * 2 * 3) / 4));
  });
});

describe('afterFailure', () => {
  const now = new Date(NOT_BEFORE.getTime() + 13 * HOUR);
  type Row = [string, unknown, Partial<AgentState>];
  const rows: Row[] = [
    [
      'a CA outage',
      new CaUnavailableError('CA down'),
      {
        lastAttempt: { at: now.toISOString(), result: 'failed', error: 'CA down', errorKind: 'ca-unavailable' },
        lastSuccess: '2026-02-28T00:00:00.000Z',
      },
    ],
    [
      'a reload failure: the certificate itself was renewed',
      new ReloadError('nginx -t failed'),
      { lastSuccess: now.toISOString() },
    ],
    [
      'a store failure',
      new StoreError('refused'),
      { lastAttempt: { at: now.toISOString(), result: 'failed', error: 'refused', errorKind: 'store' } },
    ],
    [
      'an internal error',
      new Error('boom'),
      { lastAttempt: { at: now.toISOString(), result: 'failed', error: 'boom', errorKind: 'internal' } },
    ],
    [
      'a trust failure, with what the CA offers',
      new TrustError('no chain'),
      { trust: { ok: false, detail: 'no chain', offeredFingerprints: ['aa'], checkedAt: now.toISOString() } },
    ],
  ];
  it.each(rows)('%s', (_name, error, expected) => {
    const before = frozen(failing());
    const failure = { error, live: { cert, placeholder: false }, policy, offeredFingerprints: ['aa'] };
    const next = afterFailure(before, failure, now, half);
    expect(before.consecutiveFailures).toBe(2);
    expect(next).toMatchObject({
      consecutiveFailures: 3,
      backoffStep: 3,
      nextRenewal: '2026-03-01T12:00:00.000Z',
      ...expected,
    });
    if (!(error instanceof TrustError)) expect(next.trust).toBeUndefined();
  });

  it('retries often without a usable certificate (none, or the placeholder), and within the cap with one', () => {
    const step0 = (live: { cert: X509Certificate; placeholder: boolean } | undefined) =>
      Date.parse(afterFailure(emptyState(), { error: new Error('x'), live, policy }, now, () => 0).nextAttempt ?? '') -
      now.getTime();
    expect(step0(undefined)).toBe(BACKOFF.unusableFirstMs / 2);
    expect(step0({ cert, placeholder: true })).toBe(BACKOFF.unusableFirstMs / 2);
    expect(step0({ cert, placeholder: false })).toBe(BACKOFF.maxFirstMs / 2);
  });

  it('keeps nextRenewal when no live set could be read, and the reload record of the pass', () => {
    const reload = { target: 'nginx', at: now.toISOString(), ok: false, detail: 'refused' };
    const next = afterFailure(
      { ...emptyState(), nextRenewal: 'kept' },
      { error: new ReloadError('refused'), live: undefined, policy, reload },
      now,
      half,
    );
    expect(next).toMatchObject({ nextRenewal: 'kept', reload });
  });

  it('marks the placeholder as live', () => {
    const before = frozen(emptyState());
    expect(withPlaceholder(before)).toEqual({ ...emptyState(), placeholder: true });
    expect(before.placeholder).toBe(false);
  });
});
