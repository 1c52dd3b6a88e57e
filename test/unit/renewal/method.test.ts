/**
 * Which way a renewal goes (agent/renewal/method.ts), as a table: the
 * setting, the live set and the clock in, the way and its reason out, with
 * real certificates from an in-process CA. And the clientAuth rule it rests
 * on (allowsClientAuth), held to Node's own reading of the extended key
 * usages (X509Certificate.keyUsage) as the oracle.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RenewalMethod } from '../../../agent/config/schema.js';
import { allowsClientAuth } from '../../../agent/pki/cert-rules.js';
import { chooseWay, type Way } from '../../../agent/renewal/method.js';
import type { LiveSet } from '../../../agent/store/sets.js';
import { makeCa, newKey, selfSigned, type Leaf, type LeafOptions, type TestCa } from '../../helpers/certs.js';

const HOUR = 3600_000;
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const DOMAINS = ['app.internal', '10.0.0.5'];
let ca: TestCa;
let other: TestCa;

function live(l: Leaf, opts: { keyPem?: string; placeholder?: boolean; issuer?: TestCa } = {}): LiveSet {
  return {
    id: 'set-1',
    path: '/nonexistent/.sets/set-1',
    keyPem: opts.keyPem ?? l.keyPem,
    cert: new X509Certificate(l.pem),
    intermediates: [new X509Certificate((opts.issuer ?? ca).intermediate.pem)],
    placeholder: opts.placeholder ?? false,
  };
}

const leafOf = (opts: Partial<LeafOptions> = {}, issuer?: TestCa) =>
  (issuer ?? ca).leaf({
    domains: DOMAINS,
    usages: 'server+client',
    notBefore: new Date(NOW.getTime() - HOUR),
    ...opts,
  });

function way(setting: RenewalMethod, set: LiveSet | undefined, domains = DOMAINS): Way {
  return chooseWay({ setting, live: set, domains, roots: [new X509Certificate(ca.root.pem)], now: NOW });
}

beforeAll(async () => {
  ca = await makeCa('Pinned');
  other = await makeCa('Recreated');
});

describe('chooseWay', () => {
  it('a valid certificate of the pinned CA with clientAuth and the configured names: the API, in auto and step', async () => {
    const set = live(await leafOf());
    expect(way('auto', set)).toEqual({ method: 'api' });
    expect(way('step', set)).toEqual({ method: 'api' });
  });

  it('acme, no certificate or the placeholder: an order, with no fallback to explain', async () => {
    expect(way('acme', live(await leafOf()))).toEqual({ method: 'acme' });
    expect(way('auto', undefined)).toEqual({ method: 'acme' });
    expect(way('step', undefined)).toEqual({ method: 'acme' });
    const stand = await selfSigned(DOMAINS, new Date(NOW.getTime() - HOUR), new Date(NOW.getTime() + HOUR));
    expect(way('step', { ...live(stand), intermediates: [], placeholder: true })).toEqual({ method: 'acme' });
  });

  const cases: [string, () => Promise<LiveSet>, RegExp][] = [
    [
      'expired',
      async () =>
        live(await leafOf({ notBefore: new Date(NOW.getTime() - 3 * HOUR), notAfter: new Date(NOW.getTime() - HOUR) })),
      /expired/,
    ],
    [
      'without clientAuth',
      async () => live(await leafOf({ usages: 'server' })),
      /lacks the clientAuth extended key usage/,
    ],
    [
      'of another CA (recreated)',
      async () => live(await leafOf({}, other), { issuer: other }),
      /does not verify to the pinned root/,
    ],
    [
      'lacking a configured name',
      async () => live(await leafOf({ domains: ['app.internal'] })),
      /lacks the configured names 10\.0\.0\.5/,
    ],
    [
      'carrying a name no longer configured',
      async () => live(await leafOf({ domains: [...DOMAINS, 'old.internal'] })),
      /names no longer configured \(old\.internal\)/,
    ],
    [
      'with another key',
      async () => live(await leafOf(), { keyPem: (await newKey()).pem }),
      /does not match the private key/,
    ],
  ];

  it.each(cases)('a certificate %s: auto orders over ACME and says why, step refuses', async (_what, make, reason) => {
    const set = await make();
    const auto = way('auto', set);
    expect(auto.method).toBe('acme');
    expect(auto.method === 'acme' && auto.fallback).toMatch(reason);
    const step = way('step', set);
    expect(step.method).toBe('refused');
    expect(step.method === 'refused' && step.reason).toMatch(reason);
  });
});

describe('allowsClientAuth, against Node’s reading of extendedKeyUsage', () => {
  it.each<[LeafOptions['usages'], boolean]>([
    ['server+client', true],
    ['server', false],
    ['none', true],
  ])('usages %s: %s', async (usages, expected) => {
    const cert = new X509Certificate((await ca.leaf({ domains: DOMAINS, usages })).pem);
    expect(allowsClientAuth(cert)).toBe(expected);
    // Node lists the extended key usages (undefined when the extension is absent: any use).
    const oracle = cert.keyUsage === undefined || cert.keyUsage.includes('1.3.6.1.5.5.7.3.2');
    expect(allowsClientAuth(cert)).toBe(oracle);
  });
});
