/**
 * What a pass leaves in state.json: the state after a pass that succeeded
 * and after one that failed, each a new state computed from the previous one
 * (never changed in place), the clock and the random source, so the backoff,
 * the clock-skew rule and the failure record are tested as tables.
 */
import type { X509Certificate } from 'node:crypto';
import { AgentError, ReloadError, TrustError, describeError } from '../lib/errors.js';
import { validityOf } from '../pki/x509.js';
import type { AgentState, LastRenewal, ReloadRecord } from '../store/state.js';
import { renewalTimeOf, retryDelay, type Random, type RenewalPolicy } from './schedule.js';

/** More than any CA's backdating: a fresh certificate this old means the clocks disagree. */
const CLOCK_SKEW_MS = 2 * 60 * 60_000;

interface Live {
  cert: X509Certificate;
  placeholder: boolean;
}

/** What a pass that did not fail did. */
export interface Success {
  action: 'renewed' | 'not-due';
  live: Live;
  nextRenewal: Date;
  /** What a reload of this pass recorded, if it reloaded. */
  reload?: ReloadRecord;
  /** The SHA-256 of the config file the pass ran with, when the caller knows it (timer mode). */
  configSha256?: string;
  /** A renewal: which way it went, and why not the CA's API when that was wanted. */
  method?: 'step' | 'acme';
  fallback?: string;
}

/** What is known after a pass failed. */
export interface Failure {
  error: unknown;
  /** The live set as it is after the failure, if one could be read. */
  live: Live | undefined;
  policy: RenewalPolicy;
  reload?: ReloadRecord;
  /** After a trust failure: the roots the CA offers now, for the operator only. */
  offeredFingerprints?: string[];
  configSha256?: string;
}

/**
 * A certificate issued this moment that is already due, with a notBefore
 * hours in the past by our clock: the clocks disagree (CAs backdate by a
 * minute, at most an hour; more is not backdating).
 */
export function clockSkewed(success: Pick<Success, 'action' | 'live' | 'nextRenewal'>, now: Date): boolean {
  return (
    success.action === 'renewed' &&
    now >= success.nextRenewal &&
    now.getTime() - validityOf(success.live.cert).notBefore.getTime() > CLOCK_SKEW_MS
  );
}

export function afterSuccess(state: AgentState, success: Success, now: Date, random: Random): AgentState {
  const at = now.toISOString();
  const skewed = clockSkewed(success, now);
  const { nextAttempt: _retry, ...rest } = state;
  const next: AgentState = {
    ...rest,
    lastAttempt: { at, result: success.action },
    ...(success.action === 'renewed' ? { lastSuccess: at } : {}),
    ...(success.method ? { lastRenewal: lastRenewalOf(success, at) } : {}),
    consecutiveFailures: 0,
    backoffStep: skewed ? state.backoffStep + 1 : 0,
    nextRenewal: success.nextRenewal.toISOString(),
    placeholder: success.live.placeholder,
    trust: { ok: true, checkedAt: at },
    ...(success.reload ? { reload: success.reload } : {}),
    ...(success.configSha256 ? { configSha256: success.configSha256 } : {}),
  };
  if (!skewed) return next;
  // Renewing again at once would loop against the CA: back off instead.
  const delay = retryDelay(state.backoffStep, validityOf(success.live.cert), now, random);
  return { ...next, nextAttempt: new Date(now.getTime() + delay).toISOString() };
}

function lastRenewalOf(success: Success, at: string): LastRenewal {
  return {
    method: success.method ?? 'acme',
    at,
    ...(success.fallback ? { fallback: success.fallback } : {}),
  };
}

export function afterFailure(state: AgentState, failure: Failure, now: Date, random: Random): AgentState {
  const at = now.toISOString();
  const { error: err, live } = failure;
  const error = describeError(err);
  const usable = live && !live.placeholder ? validityOf(live.cert) : undefined;
  const delay = retryDelay(state.backoffStep, usable, now, random);
  return {
    ...state,
    lastAttempt: { at, result: 'failed', error, errorKind: err instanceof AgentError ? err.kind : 'internal' },
    // A failed reload: the certificate itself was renewed; only the consumer failed.
    ...(err instanceof ReloadError ? { lastSuccess: at } : {}),
    consecutiveFailures: state.consecutiveFailures + 1,
    backoffStep: state.backoffStep + 1,
    nextAttempt: new Date(now.getTime() + delay).toISOString(),
    ...(live ? { nextRenewal: renewalTimeOf(live, { renewal: failure.policy }).toISOString() } : {}),
    ...(err instanceof TrustError
      ? { trust: { ok: false, detail: error, offeredFingerprints: failure.offeredFingerprints ?? [], checkedAt: at } }
      : {}),
    ...(failure.reload ? { reload: failure.reload } : {}),
    ...(failure.configSha256 ? { configSha256: failure.configSha256 } : {}),
  };
}

/** The pass failed and installed the placeholder so the consumer can start. */
export function withPlaceholder(state: AgentState): AgentState {
  return { ...state, placeholder: true };
}
