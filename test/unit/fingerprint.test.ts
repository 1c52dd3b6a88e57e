/** Pins as operators paste them: colons, spaces, upper case, a sha256: prefix; nothing else. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprintOfDer, fingerprintProblem, parseFingerprint } from '../../agent/pki/fingerprint.js';
import { makeCa } from '../helpers/certs.js';

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
