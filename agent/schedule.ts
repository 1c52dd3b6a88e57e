/**
 * When to renew and when to retry: pure functions of the certificate, the
 * policy, the clock and a random source, so they are tested with a fake clock
 * and a fixed random. Nothing here keeps time; the daemon asks again at every
 * check, which is what makes a frozen or suspended container renew as soon as
 * it wakes.
 */
import { createHash } from 'node:crypto';

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

export function isDue(cert: Validity, policy: RenewalPolicy, now: Date, random: Random): boolean {
  return now.getTime() >= nextRenewal(cert, policy, random).getTime();
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
 * Retry after failures: exponential backoff with "equal jitter" (half fixed,
 * half random), so a fleet that failed together does not retry together.
 *
 *   step 0 → 30 s, 1 → 1 min, 2 → 2 min, … doubling up to the cap
 *   cap = a quarter of the time left before expiry, so at least ~4 more
 *         attempts fit before the certificate expires; never below 30 s
 *         and never above 1 h
 *   after expiry (or with no certificate at all) the cap is 5 min: the proxy
 *         is serving a stale or stand-in certificate, so keep trying often.
 */
export const BACKOFF = {
  firstMs: 30_000,
  minCapMs: 30_000,
  maxCapMs: 60 * 60_000,
  expiredCapMs: 5 * 60_000,
  shareOfRemaining: 0.25,
} as const;

export function retryDelay(step: number, cert: Validity | undefined, now: Date, random: Random): number {
  const remaining = cert ? cert.notAfter.getTime() - now.getTime() : 0;
  const cap = remaining > 0 ? Math.min(BACKOFF.maxCapMs, Math.max(BACKOFF.minCapMs, remaining * BACKOFF.shareOfRemaining)) : BACKOFF.expiredCapMs;
  const exponential = Math.min(cap, BACKOFF.firstMs * 2 ** Math.min(step, 30));
  return Math.round(exponential / 2 + (exponential / 2) * clamp01(random()));
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(Math.max(x, 0), 0.999999) : 0;
}
