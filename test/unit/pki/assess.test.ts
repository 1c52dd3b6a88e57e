/**
 * The one assessment of a certificate set that the renewal decision, the
 * store, `status` and `doctor` share: each kind of problem is found, named
 * with the certificate's serial, and ordered so the most urgent comes first.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { assessSet, firstCritical } from '../../../agent/pki/assess.js';

const findingsOf = (...args: Parameters<typeof assessSet>) => assessSet(...args).findings;
import { makeCa, newKey, selfSigned, type Leaf, type TestCa } from '../../helpers/certs.js';

const DOMAINS = ['app.internal', '10.0.0.5'];
const HOUR = 3_600_000;
let ca: TestCa;
let other: TestCa;

beforeAll(async () => {
  ca = await makeCa('Assess');
  other = await makeCa('Elsewhere');
});

function review(leaf: Leaf, opts: { keyPem?: string; placeholder?: boolean; chain?: string } = {}) {
  const [cert, ...intermediates] = (opts.chain ?? leaf.fullchainPem)
    .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!
    .map((p) => new X509Certificate(p));
  return { keyPem: opts.keyPem ?? leaf.keyPem, cert: cert!, intermediates, placeholder: opts.placeholder ?? false };
}
const expectations = (now = new Date()) => ({ domains: DOMAINS, roots: [new X509Certificate(ca.root.pem)], now });
const codes = (f: { code: string }[]) => f.map((x) => x.code);

describe('assessSet', () => {
  it('finds nothing wrong with a good set', async () => {
    const leaf = await ca.leaf({ domains: DOMAINS });
    const good = assessSet(review(leaf), expectations());
    expect(good.findings).toEqual([]);
    expect(good.root?.fingerprint256).toBe(new X509Certificate(ca.root.pem).fingerprint256);
  });

  it('names a key that belongs to another certificate', async () => {
    const leaf = await ca.leaf({ domains: DOMAINS });
    const findings = findingsOf(review(leaf, { keyPem: (await newKey()).pem }), expectations());
    expect(codes(findings)).toEqual(['key-mismatch']);
    expect(findings[0]!.message).toBe(`certificate ${leaf.serial.toLowerCase()} does not match the private key`);
  });

  it('names the configured names the certificate lacks', async () => {
    const leaf = await ca.leaf({ domains: ['app.internal'] });
    const [finding] = findingsOf(review(leaf), expectations());
    expect(finding).toMatchObject({ code: 'names-missing', severity: 'critical', missing: ['10.0.0.5'] });
    expect(finding!.message).toMatch(/lacks the configured names 10\.0\.0\.5$/);
  });

  it('tells expired from not yet valid, naming the clock it used', async () => {
    const leaf = await ca.leaf({
      domains: DOMAINS,
      notBefore: new Date(Date.now() - 3 * HOUR),
      notAfter: new Date(Date.now() - HOUR),
    });
    const now = new Date();
    expect(findingsOf(review(leaf), expectations(now))).toEqual([
      {
        code: 'expired',
        severity: 'critical',
        message: expect.stringContaining(`this machine's clock says ${now.toISOString()}`),
        problem: expect.stringMatching(/^expired at /),
      },
    ]);
    const future = await ca.leaf({ domains: DOMAINS, notBefore: new Date(Date.now() + HOUR) });
    expect(codes(findingsOf(review(future), expectations()))).toEqual(['not-yet-valid']);
  });

  it('refuses a chain to another root, and a chain missing its intermediate', async () => {
    const foreign = await other.leaf({ domains: DOMAINS });
    const [chain] = findingsOf(review(foreign), expectations());
    expect(chain).toMatchObject({ code: 'chain', severity: 'critical' });
    expect(chain!.message).toMatch(/does not verify to the pinned root: no issuer found/);
    const leaf = await ca.leaf({ domains: DOMAINS });
    expect(codes(findingsOf(review(leaf, { chain: leaf.pem }), expectations()))).toEqual(['chain']);
  });

  it('takes a placeholder for a warning, without asking the pinned roots', async () => {
    const stand = await selfSigned(DOMAINS, new Date(Date.now() - 60_000), new Date(Date.now() + 24 * HOUR));
    const findings = findingsOf(review(stand, { placeholder: true }), expectations());
    expect(findings).toEqual([
      { code: 'placeholder', severity: 'warning', message: expect.stringContaining('placeholder') },
    ]);
    expect(firstCritical(findings)).toBeUndefined();
  });

  it('lists every problem at once, the first critical one first', async () => {
    const leaf = await other.leaf({ domains: ['app.internal'] });
    const findings = findingsOf(review(leaf, { keyPem: (await newKey()).pem }), expectations());
    expect(codes(findings)).toEqual(['key-mismatch', 'names-missing', 'chain']);
    expect(firstCritical(findings)?.code).toBe('key-mismatch');
  });
});
