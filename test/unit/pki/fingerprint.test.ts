/**
 * Pins as operators paste them: colons, spaces, upper case, a sha256: prefix,
 * and the output of step, openssl and sha256sum as printed; nothing else.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprintOfDer, fingerprintProblem, parseFingerprint } from '../../../agent/pki/fingerprint.js';
import { makeCa } from '../../helpers/certs.js';

const HEX = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const colons = HEX.toUpperCase().match(/../g)!.join(':');

describe('parseFingerprint', () => {
  it.each([
    ['plain lowercase', HEX],
    ['upper case with colons (openssl -fingerprint)', colons],
    ['with spaces and surrounding whitespace', `  ${HEX.match(/.{8}/g)!.join(' ')}\n`],
    ['with a sha256: prefix', `sha256:${HEX}`],
    ['with a SHA256= prefix', `SHA256=${colons}`],
  ])('normalises %s', (_what, input) => {
    expect(parseFingerprint(input)).toBe(HEX);
  });
  it.each([
    ['too short', HEX.slice(0, 62)],
    ['too long', `${HEX}00`],
    ['not hex', HEX.replace('a', 'g')],
    ['SHA-1 length', 'a'.repeat(40)],
    ['empty', ''],
  ])('refuses %s', (_what, input) => {
    expect(parseFingerprint(input)).toBeUndefined();
  });
  it.each([
    ['openssl 3 -fingerprint -sha256', `sha256 Fingerprint=${colons}\n`],
    ['openssl 1.1 -fingerprint -sha256', `SHA256 Fingerprint=${colons}`],
    ['sha256sum of stdin', `${HEX}  -\n`],
    ['sha256sum -b of stdin', `${HEX} *-`],
  ])('accepts %s as printed', (_what, input) => {
    expect(parseFingerprint(input)).toBe(HEX);
  });
  it.each([
    ['sha256sum of a file (the PEM, not the DER)', `${HEX}  root_ca.crt`],
    ['a SHA-1 fingerprint from openssl', `SHA1 Fingerprint=${'AA:'.repeat(19)}AA`],
  ])('refuses %s', (_what, input) => {
    expect(parseFingerprint(input)).toBeUndefined();
  });
  it('takes what the real openssl and sha256sum print for a root', async () => {
    const ca = await makeCa('Tools');
    const fromOpenssl = execFileSync('openssl', ['x509', '-fingerprint', '-sha256', '-noout'], {
      input: ca.root.pem,
    }).toString();
    expect(fromOpenssl).toMatch(/^sha256 Fingerprint=/i);
    expect(parseFingerprint(fromOpenssl)).toBe(ca.fingerprint);
    const der = execFileSync('openssl', ['x509', '-outform', 'der'], { input: ca.root.pem });
    const fromSum = execFileSync('sha256sum', { input: der }).toString();
    expect(fromSum).toMatch(/^[0-9a-f]{64} {2}-\n$/);
    expect(parseFingerprint(fromSum)).toBe(ca.fingerprint);
  });
  it('two spellings of the same pin compare equal after parsing; different pins do not', () => {
    expect(parseFingerprint(colons)).toBe(parseFingerprint(HEX));
    expect(parseFingerprint(HEX.replace(/.$/, '0'))).not.toBe(parseFingerprint(HEX));
  });
});

describe('fingerprintProblem', () => {
  it('is undefined for a valid pin', () => expect(fingerprintProblem(colons)).toBeUndefined());
  it('counts the digits of a hex string of the wrong length', () => {
    expect(fingerprintProblem('a'.repeat(40))).toBe('has 40 hex digits; a SHA-256 fingerprint has 64 (colons allowed)');
  });
  it('says what is expected for anything else', () => {
    expect(fingerprintProblem('root_ca.crt')).toMatch(/expected 64 hex digits/);
  });
});

describe('fingerprintOfDer', () => {
  it('is the lowercase SHA-256 over the DER, as step certificate fingerprint prints', async () => {
    const ca = await makeCa('Fp');
    const der = new Uint8Array(ca.root.cert.rawData);
    expect(fingerprintOfDer(der)).toBe(createHash('sha256').update(der).digest('hex'));
    expect(fingerprintOfDer(der)).toBe(ca.fingerprint);
    expect(fingerprintOfDer(der)).toMatch(/^[0-9a-f]{64}$/);
  });
});
