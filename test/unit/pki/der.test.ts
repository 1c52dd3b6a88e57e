/**
 * The DER the agent writes itself, checked by independent parsers: OpenSSL
 * for the CSR (signature and extension), Node's X509Certificate and OpenSSL
 * for the self-signed placeholder.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Pkcs10CertificateRequest,
  type SubjectAlternativeNameExtension,
  X509Certificate as PeculiarCert,
} from '@peculiar/x509';
import { createCsr, createSelfSigned } from '../../../agent/pki/der.js';
import { makePlaceholder } from '../../../agent/pki/placeholder.js';

const dir = mkdtempSync(join(tmpdir(), 'cert-agent-der-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEYS = {
  'ec-p256': () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  'ec-p384': () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  'rsa-2048': () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
};
const NAMES = ['app.example', 'www.app.example', '10.1.2.3', '::1', 'fd00::1:2'];

describe('createCsr', () => {
  for (const [type, make] of Object.entries(KEYS)) {
    it(`is a request OpenSSL verifies, with every name, for ${type}`, () => {
      const keyPem = make().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const file = join(dir, `${type}.csr`);
      writeFileSync(file, createCsr(NAMES, keyPem));
      const text = execFileSync('openssl', ['req', '-inform', 'der', '-in', file, '-noout', '-verify', '-text'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(text).toMatch(/Subject: CN\s?=\s?app\.example/);
      expect(text).toContain(
        'DNS:app.example, DNS:www.app.example, IP Address:10.1.2.3, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:0:0:0:0:0:1:2',
      );
      const pub = execFileSync('openssl', ['req', '-inform', 'der', '-in', file, '-noout', '-pubkey'], {
        encoding: 'utf8',
      });
      expect(pub.trim()).toBe(createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString().trim());
    });
  }
  it('is signed by the given key: another key gives another public key in the request', () => {
    const a = KEYS['ec-p256']().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const b = KEYS['ec-p256']().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(createCsr(['x.example'], a).equals(createCsr(['x.example'], b))).toBe(false);
  });
});

describe('createSelfSigned', () => {
  it('is a valid self-signed server certificate for the names, window and subject given', () => {
    const { privateKey } = KEYS['ec-p256']();
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const notBefore = new Date('2026-11-28T10:00:00Z');
    const notAfter = new Date('2026-11-29T10:00:00Z');
    const pem = createSelfSigned({
      keyPem,
      names: ['app.example', '10.1.2.3'],
      subject: [
        ['CN', 'stand-in'],
        ['O', 'cert-agent placeholder'],
      ],
      notBefore,
      notAfter,
    });
    const cert = new X509Certificate(pem);
    expect(cert.subject).toBe('CN=stand-in\nO=cert-agent placeholder');
    expect(cert.subjectAltName).toBe('DNS:app.example, IP Address:10.1.2.3');
    expect(new Date(cert.validFrom).getTime()).toBe(notBefore.getTime());
    expect(new Date(cert.validTo).getTime()).toBe(notAfter.getTime());
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(privateKey)).toBe(true);
    expect(cert.ca).toBe(false);
    const file = join(dir, 'self.pem');
    writeFileSync(file, pem);
    const text = execFileSync('openssl', ['x509', '-in', file, '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature/);
    expect(text).toContain('TLS Web Server Authentication');
  });
  it('uses GeneralizedTime from 2050 on (RFC 5280)', () => {
    const keyPem = KEYS['ec-p256']().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const pem = createSelfSigned({
      keyPem,
      names: ['a.example'],
      subject: [['CN', 'x']],
      notBefore: new Date('2049-12-31T00:00:00Z'),
      notAfter: new Date('2050-01-02T00:00:00Z'),
    });
    const cert = new X509Certificate(pem);
    expect(new Date(cert.validTo).toISOString()).toBe('2050-01-02T00:00:00.000Z');
  });
});

/** What OpenSSL reads from a DER request: its text, after checking the signature. */
function opensslCsr(der: Buffer, name: string): string {
  const file = join(dir, name);
  writeFileSync(file, der);
  const args = ['req', '-inform', 'der', '-in', file, '-noout', '-verify', '-text'];
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function sanOf(item: Pkcs10CertificateRequest | PeculiarCert): string[] {
  const ext = item.getExtension('2.5.29.17') as SubjectAlternativeNameExtension | null;
  return (ext?.names.items ?? []).map((n) => `${n.type}:${n.value}`);
}

describe('IPv6 addresses written with an IPv4 tail', () => {
  it('are encoded as their 16 bytes, as OpenSSL and @peculiar/x509 read them', async () => {
    const keyPem = KEYS['ec-p256']().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const der = createCsr(['app.example', '64:ff9b::192.0.2.33', '::ffff:10.1.2.3', '2001:db8::1'], keyPem);
    const text = opensslCsr(der, 'v4tail.csr');
    expect(text).toContain(
      [
        'IP Address:64:FF9B:0:0:0:0:C000:221',
        'IP Address:0:0:0:0:0:FFFF:A01:203',
        'IP Address:2001:DB8:0:0:0:0:0:1',
      ].join(', '),
    );
    const csr = new Pkcs10CertificateRequest(new Uint8Array(der));
    expect(await csr.verify()).toBe(true);
    expect(sanOf(csr)).toEqual(['dns:app.example', 'ip:64:ff9b::c000:221', 'ip:::ffff:a01:203', 'ip:2001:db8::1']);
  });
});

describe('a first name longer than a commonName may be', () => {
  // 70 characters, each label within DNS's 63: X.520 allows 64 for a CN.
  const long = `${'a'.repeat(62)}.example`;
  const keyPem = KEYS['ec-p256']().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  it('is left out of the request subject and carried by the (then critical) subjectAltName', async () => {
    expect(long).toHaveLength(70);
    const der = createCsr([long, 'www.example'], keyPem);
    const text = opensslCsr(der, 'long.csr');
    expect(text).toMatch(/Subject:\s*\n/);
    expect(text).not.toContain('CN');
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical\s+DNS:a{62}\.example, DNS:www\.example/);
    const csr = new Pkcs10CertificateRequest(new Uint8Array(der));
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe('');
    expect(sanOf(csr)).toEqual([`dns:${long}`, 'dns:www.example']);
  });

  it('a first name of exactly 64 characters is still the CN', async () => {
    const edge = `${'b'.repeat(56)}.example`;
    expect(edge).toHaveLength(64);
    const csr = new Pkcs10CertificateRequest(new Uint8Array(createCsr([edge], keyPem)));
    expect(csr.subject).toBe(`CN=${edge}`);
    expect(opensslCsr(createCsr([edge], keyPem), 'edge.csr')).toMatch(/X509v3 Subject Alternative Name: *\n/);
  });

  it('the placeholder for such a name keeps its own short CN and the name in its subjectAltName', async () => {
    const { certPem } = await makePlaceholder([long], new Date());
    const cert = new PeculiarCert(certPem);
    expect(cert.subject).toBe('CN=cert-agent placeholder (CA not reached yet), O=cert-agent placeholder');
    expect(sanOf(cert)).toEqual([`dns:${long}`]);
    const file = join(dir, 'long-placeholder.pem');
    writeFileSync(file, certPem);
    const args = ['x509', '-in', file, '-noout', '-ext', 'subjectAltName'];
    const san = execFileSync('openssl', args, { encoding: 'utf8' });
    expect(san).toContain(`DNS:${long}`);
  });

  it('a subject value over 64 characters is never written into a certificate', () => {
    const pem = createSelfSigned({
      keyPem,
      names: [long],
      subject: [['CN', long]],
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2026-01-02T00:00:00Z'),
    });
    const cert = new X509Certificate(pem);
    expect(cert.subject ?? '').toBe('');
    expect(cert.subjectAltName).toBe(`DNS:${long}`);
    const file = join(dir, 'long-self.pem');
    writeFileSync(file, pem);
    const text = execFileSync('openssl', ['x509', '-in', file, '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/Subject Alternative Name: critical/);
  });
});
