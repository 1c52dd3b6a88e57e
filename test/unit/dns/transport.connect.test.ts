/**
 * A UDP exchange whose socket cannot even connect: the kernel refuses the
 * destination at connect time (a link-local IPv6 address without its scope,
 * EINVAL). That must be a DnsError naming the server, at once — not an
 * exception thrown out of a socket callback that takes the process down while
 * the query never settles.
 */
import { describe, expect, it } from 'vitest';
import { DnsError, query } from '../../../agent/dns/client.js';

describe('exchange over UDP, connect refused', () => {
  it('a link-local address without its scope: unreachable, named, within the try', async () => {
    const started = Date.now();
    const err = await query({ host: 'fe80::1', port: 53 }, 'a.example.test', 'A', { timeoutMs: 2000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DnsError);
    expect(err).toMatchObject({ reason: 'unreachable', server: '[fe80::1]:53' });
    expect((err as Error).message).toMatch(
      /^DNS server \[fe80::1\]:53 could not be reached for the query of a\.example\.test A over UDP \(E[A-Z]+\)$/,
    );
    expect(Date.now() - started).toBeLessThan(1000);
  }, 5000);
});
