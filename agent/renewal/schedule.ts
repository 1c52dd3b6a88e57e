/**
 * When to renew and when to retry: pure functions of the certificate, the
 * policy, the clock and a random source, so they are tested with a fake clock
 * and a fixed random. Nothing here keeps time; the daemon asks again at every
 * check, which is what makes a frozen or suspended container renew as soon as
 * it wakes.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { AllowanceThreshold } from '../config/schema.js';
import { validityOf } from '../pki/x509.js';

export interface RenewalPolicy {
  /** Fraction of the lifetime after which to renew (renewal.at). */
  at: number;
  /** Up to this fraction of the lifetime earlier, at random, to spread a fleet (renewal.jitter). */
  jitter: number;
}

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** A number in [0, 1). */
export type Random = () => number;

/** The moment renewal becomes due: notBefore + lifetime × (at − jitter × random). */
export function nextRenewal(cert: Validity, policy: RenewalPolicy, random: Random): Date {
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  const fraction = policy.at - policy.jitter * clamp01(random());
  return new Date(cert.notBefore.getTime() + lifetime * fraction);
}

/**
 * A random source fixed per certificate: every check of the same certificate
 * draws the same jitter (re-drawing at each check would pull renewals towards
 * the earliest moment), while serials differ across the fleet, so renewals
 * still spread.
 */
export function randomForSerial(serial: string): Random {
  const digest = createHash('sha256').update(`cert-agent-jitter:${serial}`).digest();
  const value = digest.readUInt32BE(0) / 2 ** 32;
  return () => value;
}

/**
 * How long the CA may be unreachable: from now, before the live certificate
 * expires (after that the consumer serves an expired certificate); and on a
 * normal day, what the schedule leaves between the renewal time and expiry,
 * which is all an outage that starts at the renewal time can take.
 */
export interface OutageAllowance {
  /** notAfter − now, never negative. */
  fromNowMs: number;
  /** notAfter − the renewal time of this certificate. */
  normalDayMs: number;
  lifetimeMs: number;
}

export function outageAllowance(cert: Validity, policy: RenewalPolicy, random: Random, now: Date): OutageAllowance {
  const lifetimeMs = cert.notAfter.getTime() - cert.notBefore.getTime();
  return {
    fromNowMs: Math.max(0, cert.notAfter.getTime() - now.getTime()),
    normalDayMs: cert.notAfter.getTime() - nextRenewal(cert, policy, random).getTime(),
    lifetimeMs,
  };
}

/** The least normal-day allowance the policy leaves any certificate of this lifetime (the jitter drawn at 0). */
export function leastNormalDayAllowanceMs(lifetimeMs: number, policy: RenewalPolicy): number {
  return lifetimeMs * (1 - policy.at);
}

export function allowanceThresholdMs(threshold: AllowanceThreshold, lifetimeMs: number): number {
  return 'share' in threshold ? lifetimeMs * threshold.share : threshold.seconds * 1000;
}

/**
 * Retry after failures: exponential backoff with "equal jitter" (half fixed,
 * half random), so a fleet that failed together does not retry together.
 *
 * With a usable certificate (valid, not a placeholder):
 *   first  = lifetime / 200, between 1 s and 30 s (30 s for 24 h certificates;
 *            about 1 s for the minutes-long ones of a test CA)
 *   cap    = a quarter of the time left before expiry, between `first` and
 *            1 h, so at least ~4 more attempts fit before the certificate
 *            expires however long the outage
 * Without one (none yet, a placeholder, or expired — the proxy is serving a
 * stand-in or a stale certificate), retry often:
 *   first  = 5 s, cap = 60 s.
 * Retrying continues forever; only the interval is bounded.
 */
export const BACKOFF = {
  lifetimeShare: 1 / 200,
  minFirstMs: 1_000,
  maxFirstMs: 30_000,
  remainingShare: 0.25,
  maxCapMs: 60 * 60_000,
  unusableFirstMs: 5_000,
  unusableCapMs: 60_000,
} as const;

export function retryDelay(step: number, cert: Validity | undefined, now: Date, random: Random): number {
  const remaining = cert ? cert.notAfter.getTime() - now.getTime() : 0;
  let first: number = BACKOFF.unusableFirstMs;
  let cap: number = BACKOFF.unusableCapMs;
  if (cert && remaining > 0) {
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    first = clamp(lifetime * BACKOFF.lifetimeShare, BACKOFF.minFirstMs, BACKOFF.maxFirstMs);
    cap = clamp(remaining * BACKOFF.remainingShare, first, BACKOFF.maxCapMs);
  }
  const exponential = Math.min(cap, first * 2 ** Math.min(step, 30));
  return Math.round(exponential / 2 + (exponential / 2) * clamp01(random()));
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(Math.max(x, 0), 0.999999) : 0;
}

/** When the live certificate is due, under the configured renewal settings. */
export function renewalTimeOf(live: { cert: X509Certificate }, config: { renewal: RenewalPolicy }): Date {
  return nextRenewal(validityOf(live.cert), config.renewal, randomForSerial(live.cert.serialNumber));
}
