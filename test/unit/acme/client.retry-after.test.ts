/**
 * Retry-After as the ACME polls read it: delay-seconds or an HTTP date, and
 * nothing for an absent or unreadable value (the poll's own backoff applies).
 */
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, retryAfterMs } from '../../../agent/acme/client.js';

describe('retryAfterMs', () => {
  const now = Date.parse('2026-12-02T10:00:00Z');
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMs('2', now)).toBe(2_000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Wed, 02 Dec 2026 10:00:07 GMT', now)).toBe(7_000);
    expect(retryAfterMs('Wed, 02 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs(['3', '9'], now)).toBe(3_000);
  });
  it('gives nothing for an absent or unreadable value', () => {
    for (const v of [undefined, '', 'soon', '-5', '1.5e3']) expect(retryAfterMs(v, now)).toBeUndefined();
  });
  it('is capped by the poll at a sane maximum', () => {
    expect(MAX_RETRY_AFTER_MS).toBeLessThanOrEqual(30_000);
  });
});
