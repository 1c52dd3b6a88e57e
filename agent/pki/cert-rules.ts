/**
 * What a path check has to know about each certificate beyond Node's
 * X509Certificate accessors, read once from its DER: basic constraints, key
 * usage, extended key usage, the Netscape certificate type, every
 * subjectAltName, name constraints, the key identifiers, which extensions
 * are critical, the subject's RDNs and the key's algorithm parameters.
 * Anything malformed is a DerError, which the chain check turns into a
 * finding.
 */
import type { X509Certificate } from 'node:crypto';
import {
  DerError,
  certificateExtensions,
  certificateParts,
  expectTag,
  oidText,
  readAll,
  readBoolean,
  readSingle,
  smallUnsigned,
  type CertificateParts,
  type Tlv,
} from './der-read.js';

/** One GeneralName as it appears in the DER: its context tag and contents. */
export interface GeneralName {
  tag: number;
  body: Buffer;
}

/** One GeneralSubtree of a name constraint. */
export interface Subtree {
  base: GeneralName;
  /** minimum other than 0, or a maximum: RFC 5280 forbids both, OpenSSL refuses them when they apply. */
  badRange: boolean;
}

export interface NameConstraints {
  permitted: Subtree[];
  excluded: Subtree[];
}

export interface CertRules {
  ca: boolean;
  /** Whether basicConstraints is present and marked critical. */
  basicConstraints?: { critical: boolean };
  pathLen?: number;
  /** keyUsage bits (bit 0 = digitalSignature is 0x80 of the first byte); undefined when absent. */
  keyUsage?: Buffer;
  eku?: string[];
  /** Netscape certificate type bits (bit 1 = SSL server); undefined when absent. */
  nsCertType?: Buffer;
  nameConstraints?: NameConstraints;
  /** Every subjectAltName entry; undefined when there is no such extension. */
  altNames?: GeneralName[];
  altNamesCritical?: boolean;
  ski?: Buffer;
  aki?: { keyId?: Buffer; issuer?: GeneralName[]; serial?: Buffer };
  /** Extensions RFC 5280 says must not be critical but are (OpenSSL refuses them). */
  wronglyCritical: string[];
  unknownCritical: string[];
  parts: CertificateParts;
}

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  nameConstraints: '2.5.29.30',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  nsCertType: '2.16.840.1.113730.1.1',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  anyExtendedKeyUsage: '2.5.29.37.0',
};
// Critical extensions a verifier may accept without acting on them beyond
// what is checked here (policies constrain nothing this agent relies on).
// The key identifiers are not among them: RFC 5280 forbids marking them
// critical, and OpenSSL refuses a certificate that does.
const UNDERSTOOD = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  OID.nsCertType,
  '2.5.29.32',
  '2.5.29.33',
  '2.5.29.36',
  '2.5.29.54',
]);
const NON_CRITICAL: Record<string, string> = {
  [OID.authorityKeyIdentifier]: 'authority key identifier',
  [OID.subjectKeyIdentifier]: 'subject key identifier',
};

const cache = new WeakMap<X509Certificate, CertRules | DerError>();

/** The rules of `cert`, read once per certificate object; throws DerError when malformed. */
export function rulesOf(cert: X509Certificate): CertRules {
  let r = cache.get(cert);
  if (!r) {
    try {
      r = readRules(cert.raw);
    } catch (err) {
      r = err instanceof DerError ? err : new DerError(String(err));
    }
    cache.set(cert, r);
  }
  if (r instanceof DerError) throw r;
  return r;
}

function readRules(der: Buffer): CertRules {
  const rules: CertRules = { ca: false, wronglyCritical: [], unknownCritical: [], parts: certificateParts(der) };
  for (const ext of certificateExtensions(der)) {
    if (ext.critical && NON_CRITICAL[ext.oid]) rules.wronglyCritical.push(NON_CRITICAL[ext.oid]!);
    else if (ext.critical && !UNDERSTOOD.has(ext.oid)) rules.unknownCritical.push(ext.oid);
    readExtension(rules, ext.oid, ext.value);
    if (ext.oid === OID.basicConstraints) rules.basicConstraints = { critical: ext.critical };
    if (ext.oid === OID.subjectAltName) rules.altNamesCritical = ext.critical;
  }
  return rules;
}

function readExtension(rules: CertRules, oid: string, value: Buffer): void {
  const body = () => readAll(expectTag(readSingle(value), 0x30, oid));
  if (oid === OID.basicConstraints) {
    const [first, second] = body();
    if (first?.tag === 0x01) rules.ca = readBoolean(first.body);
    const len = first?.tag === 0x02 ? first : second;
    if (len) rules.pathLen = smallUnsigned(expectTag(len, 0x02, 'pathLenConstraint'));
  } else if (oid === OID.keyUsage) {
    rules.keyUsage = bitString(readSingle(value), 'keyUsage');
  } else if (oid === OID.nsCertType) {
    rules.nsCertType = bitString(readSingle(value), 'nsCertType');
  } else if (oid === OID.extKeyUsage) {
    rules.eku = body().map((t) => oidText(expectTag(t, 0x06, 'KeyPurposeId')));
  } else if (oid === OID.subjectAltName) {
    rules.altNames = body().map(generalName);
  } else if (oid === OID.nameConstraints) {
    const nc: NameConstraints = { permitted: [], excluded: [] };
    for (const part of body()) {
      if (part.tag !== 0xa0 && part.tag !== 0xa1) throw new DerError('nameConstraints holds an unknown field');
      for (const sub of readAll(part.body)) (part.tag === 0xa0 ? nc.permitted : nc.excluded).push(subtreeOf(sub));
    }
    rules.nameConstraints = nc;
  } else if (oid === OID.subjectKeyIdentifier) {
    rules.ski = expectTag(readSingle(value), 0x04, 'subjectKeyIdentifier');
  } else if (oid === OID.authorityKeyIdentifier) {
    rules.aki = authorityKeyId(body());
  }
}

function bitString(tlv: Tlv, what: string): Buffer {
  const bits = expectTag(tlv, 0x03, what);
  if (bits.length < 1 || (bits[0] as number) > 7) throw new DerError(`${what} is not a valid BIT STRING`);
  return bits.subarray(1);
}

function generalName(tlv: Tlv): GeneralName {
  if ((tlv.tag & 0xc0) !== 0x80 || (tlv.tag & 0x1f) > 8) throw new DerError('unknown kind of GeneralName');
  return { tag: tlv.tag, body: tlv.body };
}

function subtreeOf(tlv: Tlv): Subtree {
  const [base, ...rest] = readAll(expectTag(tlv, 0x30, 'GeneralSubtree'));
  if (!base) throw new DerError('GeneralSubtree without a base');
  // minimum [0] DEFAULT 0 and maximum [1]: only a minimum of 0 is allowed.
  const badRange = rest.some((t) => t.tag !== 0x80 || t.body.length !== 1 || t.body[0] !== 0);
  return { base: generalName(base), badRange };
}

function authorityKeyId(fields: Tlv[]): NonNullable<CertRules['aki']> {
  const aki: NonNullable<CertRules['aki']> = {};
  for (const f of fields) {
    if (f.tag === 0x80) aki.keyId = f.body;
    else if (f.tag === 0xa1) aki.issuer = readAll(f.body).map(generalName);
    else if (f.tag === 0x82) aki.serial = f.body;
    else throw new DerError('authorityKeyIdentifier holds an unknown field');
  }
  return aki;
}

export const hasBit = (bits: Buffer | undefined, bit: number) =>
  !!bits && (((bits[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) === 1;
export const KU_KEY_CERT_SIGN = 5;
export const NS_SSL_SERVER = 1;

/** The message of an error thrown while reading rules. */
export const malformed = (err: unknown) =>
  `it has a malformed extension (${err instanceof DerError ? err.message : String(err)})`;

/**
 * Why `cert` may not act as a CA (issue certificates), or undefined when it
 * may: basicConstraints CA:TRUE, keyCertSign if it has a keyUsage, and no
 * critical extension this agent does not understand.
 */
export function mayIssueProblem(cert: X509Certificate): string | undefined {
  let r: CertRules;
  try {
    r = rulesOf(cert);
  } catch (err) {
    return malformed(err);
  }
  if (r.unknownCritical.length) {
    return `it has a critical extension this agent does not understand (${r.unknownCritical.join(', ')})`;
  }
  if (r.wronglyCritical.length)
    return `its ${r.wronglyCritical.join(' and ')} is marked critical (RFC 5280 forbids it)`;
  if (!r.ca) return 'it is not a CA (no basicConstraints CA:TRUE)';
  if (r.keyUsage && !hasBit(r.keyUsage, KU_KEY_CERT_SIGN)) return 'its keyUsage lacks keyCertSign';
  return undefined;
}

/**
 * Whether `cert` may authenticate a TLS client (as a CA's renewal API asks
 * of it): no extendedKeyUsage at all (any use), or one naming clientAuth or
 * anyExtendedKeyUsage. A certificate that cannot be read may not.
 */
export function allowsClientAuth(cert: X509Certificate): boolean {
  let r: CertRules;
  try {
    r = rulesOf(cert);
  } catch {
    return false;
  }
  return !r.eku || r.eku.includes(OID.clientAuth) || r.eku.includes(OID.anyExtendedKeyUsage);
}
