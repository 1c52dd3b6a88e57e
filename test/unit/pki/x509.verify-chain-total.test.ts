/**
 * verifyChain and assessSet are total: whatever a certificate carries —
 * an IP address of the wrong length, a name constraint of the wrong length,
 * bytes flipped anywhere Node's parser still accepts — the answer is a
 * finding, never an exception, so the store's check, the renewal decision,
 * `status` and `doctor` always get one. openssl refuses the same odd names.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assessSet } from '../../../agent/pki/assess.js';
import { verifyChain } from '../../../agent/pki/x509.js';
import { INT, LEAF, ROOT, leafExt, mint, verdicts } from '../../helpers/chain-oracle.js';
import type { Made } from '../../harness/pki.js';

let dir: string;
let root: Made;
let ipCa: Made;
const make = (cn: string, ext: string[], issuer?: Made) => mint(dir, cn, ext, issuer);
const x509 = (m: Made) => new X509Certificate(m.pem);

const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag, body.length]), body]);
/** A subjectAltName of a DNS name and an iPAddress of exactly these bytes, as a raw extension line. */
const rawSan = (ip: Buffer) =>
  `2.5.29.17 = DER:${tlv(0x30, Buffer.concat([tlv(0x82, Buffer.from('a.example.test')), tlv(0x87, ip)])).toString('hex')}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-total-'));
  root = await make('Root', ROOT);
  ipCa = await make('IP Constrained', [...INT, 'nameConstraints = critical, permitted;IP:10.0.0.0/255.0.0.0'], root);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function assess(leaf: X509Certificate, keyPem: string, intermediates: X509Certificate[], rootCert: X509Certificate) {
  const set = { keyPem, cert: leaf, intermediates, placeholder: false };
  return assessSet(set, { domains: ['a.example.test'], roots: [rootCert], now: new Date() });
}

describe('odd IP addresses', () => {
  it('an 8-byte IP SAN under an IP name constraint is a problem, not a RangeError (openssl refuses it too)', async () => {
    const leaf = await make('a.example.test', [...LEAF, rawSan(Buffer.from([10, 0, 0, 1, 255, 0, 0, 0]))], ipCa);
    const v = await verdicts(dir, root, [ipCa], leaf);
    expect(v).toMatchObject({ openssl: false, agent: false });
    expect(v.problem).toMatch(/IP address/);
    const found = assess(x509(leaf), readFileSync(leaf.key, 'utf8'), [x509(ipCa)], x509(root));
    expect(found.findings.map((f) => f.code)).toEqual(['chain']);
  });

  it('IP SANs of every length from 0 to 17 bytes, with and without an IP constraint above', async () => {
    const plain = await make('Plain', INT, root);
    for (let len = 0; len <= 17; len++) {
      const ip = Buffer.alloc(len, 10);
      for (const ca of [ipCa, plain]) {
        const leaf = await make('a.example.test', [...LEAF, rawSan(ip)], ca);
        const check = () => verifyChain(x509(leaf), [x509(ca)], [x509(root)], new Date());
        expect(check).not.toThrow();
        expect(() => assess(x509(leaf), readFileSync(leaf.key, 'utf8'), [x509(ca)], x509(root))).not.toThrow();
        const v = check();
        // Well-formed addresses under the constraint pass; malformed ones never do there.
        if (ca === ipCa && len !== 4) expect({ len, ok: 'root' in v }).toEqual({ len, ok: false });
      }
    }
  });

  it('IP name constraints of odd lengths refuse only what they would have to be checked against', async () => {
    for (const len of [0, 5, 9, 31, 33]) {
      const base = Buffer.alloc(len, 255).toString('hex');
      const nc = `2.5.29.30 = critical, DER:${tlv(0x30, tlv(0xa0, tlv(0x30, Buffer.from(`87${len.toString(16).padStart(2, '0')}${base}`, 'hex')))).toString('hex')}`;
      const ca = await make('Odd IP Constraint', [...INT, nc], root);
      const dnsOnly = await make('b.example.test', leafExt('DNS:b.example.test'), ca);
      const withIp = await make('c.example.test', leafExt('DNS:c.example.test, IP:10.1.2.3'), ca);
      expect({ len, ...(await verdicts(dir, root, [ca], dnsOnly)) }).toEqual({ len, openssl: true, agent: true });
      expect({ len, ...(await verdicts(dir, root, [ca], withIp)) }).toMatchObject({
        len,
        openssl: false,
        agent: false,
      });
    }
  });
});

describe('flipped and truncated bytes', () => {
  it('never make verifyChain or assessSet throw', async () => {
    const leaf = await make('a.example.test', leafExt('DNS:a.example.test, IP:10.0.0.1'), ipCa);
    const keyPem = readFileSync(leaf.key, 'utf8');
    const [l, c, r] = [leaf, ipCa, root].map((m) => x509(m).raw);
    let seed = 0x5eed;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    let parsed = 0;
    for (let i = 0; i < 1500; i++) {
      const which = i % 3;
      const der = Buffer.from([l, c, r][which]!);
      const at = Math.floor(rnd() * der.length);
      if (rnd() < 0.2) der[at] = 0x87;
      else der[at] = Math.floor(rnd() * 256);
      const body = rnd() < 0.1 ? der.subarray(0, at) : der;
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(body);
      } catch {
        continue; // Node's parser refused it: parseCerts reports that before any check.
      }
      parsed++;
      const [ll, cc, rr] = [
        which === 0 ? cert : x509(leaf),
        which === 1 ? cert : x509(ipCa),
        which === 2 ? cert : x509(root),
      ];
      expect(() => verifyChain(ll, [cc], [rr], new Date())).not.toThrow();
      expect(() => assess(ll, keyPem, [cc], rr)).not.toThrow();
    }
    expect(parsed).toBeGreaterThan(100);
  });
});
