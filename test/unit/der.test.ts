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
import { createCsr, createSelfSigned } from '../../agent/der.js';

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
