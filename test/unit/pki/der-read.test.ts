/**
 * The DER reader refuses what is not DER (indefinite or non-minimal lengths,
 * values running past their container, trailing bytes) and reads the
 * extensions of a real certificate the way openssl prints them.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DerError,
  certificateExtensions,
  oidText,
  readAll,
  readSingle,
  smallUnsigned,
} from '../../../agent/pki/der-read.js';
import { makeCa } from '../../helpers/certs.js';

const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex');

describe('der-read', () => {
  it('refuses encodings that are not DER', () => {
    expect(() => readSingle(hex('30 80 00 00'))).toThrow(DerError); // indefinite length
    expect(() => readSingle(hex('04 81 01 00'))).toThrow(/not minimal/); // long form for a short length
    expect(() => readSingle(hex('04 82 00 81' + '00'.repeat(0x81)))).toThrow(/not minimal/); // leading zero
    expect(() => readSingle(hex('04 05 00 00'))).toThrow(/runs past/);
    expect(() => readSingle(hex('04 01 00 00'))).toThrow(/trailing/);
    expect(() => readAll(hex('04'))).toThrow(/truncated/);
    expect(() => smallUnsigned(hex('00 05'))).toThrow(/not minimal/);
    expect(() => smallUnsigned(hex('ff'))).toThrow(/negative/);
    expect(() => oidText(hex('2b 86'))).toThrow(/truncated/);
  });

  it('reads OIDs and integers', () => {
    expect(oidText(hex('55 1d 13'))).toBe('2.5.29.19');
    expect(oidText(hex('2b 06 01 05 05 07 03 01'))).toBe('1.3.6.1.5.5.7.3.1');
    expect(smallUnsigned(hex('00 80'))).toBe(128);
  });

  it('lists the extensions of a certificate with their criticality, as openssl shows them', async () => {
    const ca = await makeCa('DER');
    const leaf = await ca.leaf({ domains: ['a.example.test'] });
    const exts = certificateExtensions(new X509Certificate(leaf.pem).raw);
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: leaf.pem }).toString();
    const criticalInText = [...text.matchAll(/X509v3 ([A-Za-z ]+): critical/g)].length;
    expect(criticalInText).toBeGreaterThan(0);
    expect(exts.filter((e) => e.critical)).toHaveLength(criticalInText);
    expect(exts.map((e) => e.oid)).toContain('2.5.29.17');
  });
});
