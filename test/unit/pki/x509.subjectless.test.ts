/**
 * A certificate without a subject, as step-ca issues when the first name is
 * too long for a CN (the request then carries none): the checks of the
 * store and the summary that status shows must take it, naming it by its
 * subjectAltName.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSelfSigned } from '../../../agent/pki/der.js';
import { missingNames, summarize, verifyChain } from '../../../agent/pki/x509.js';

const long = `${'a'.repeat(62)}.example`;
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const notBefore = new Date('2026-12-01T00:00:00Z');
const notAfter = new Date('2026-12-03T00:00:00Z');
const cert = new X509Certificate(
  createSelfSigned({
    keyPem,
    names: [long],
    subject: [['CN', long]],
    notBefore,
    notAfter,
  }),
);

describe('a certificate without a subject', () => {
  it('is summarized by its names', () => {
    expect(cert.subject ?? '').toBe('');
    const s = summarize(cert);
    expect(s.subject).toBe(`(no subject; DNS:${long})`);
    expect(s.names).toEqual([long]);
    expect(missingNames(cert, [long])).toEqual([]);
  });
  it('goes through chain verification, whose problems name it', () => {
    const unanchored = verifyChain(cert, [], [], new Date('2026-12-02T00:00:00Z'));
    expect('problem' in unanchored && unanchored.problem).toMatch(
      /^no issuer found for \(no subject; DNS:a{62}\.example\) among/,
    );
    const late = verifyChain(cert, [], [], new Date('2026-12-04T00:00:00Z'));
    expect('problem' in late && late.problem).toMatch(/^\(no subject; DNS:a{62}\.example\) expired at/);
  });
});
