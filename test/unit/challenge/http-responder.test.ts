/**
 * Who counts as one client for the http-01 listener's per-client connection
 * limit: an IPv4 address however it arrives, and an IPv6 /64 (one host can
 * use any number of addresses in its own /64).
 */
import { describe, expect, it } from 'vitest';
import { clientKey } from '../../../agent/challenge/http-responder.js';

describe('clientKey', () => {
  it('an IPv4 address is itself, also IPv4-mapped on a dual-stack socket', () => {
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('::ffff:c000:207')).toBe('192.0.2.7');
  });
  it('IPv6 addresses of one /64 are one client, of another /64 another', () => {
    const a = clientKey('2001:db8:1:2::1');
    expect(clientKey('2001:db8:1:2:ffff:ffff:ffff:fffe')).toBe(a);
    expect(clientKey('2001:0db8:0001:0002:0:0:0:9')).toBe(a);
    expect(clientKey('2001:db8:1:3::1')).not.toBe(a);
    expect(clientKey('::1')).not.toBe(a);
  });
});
