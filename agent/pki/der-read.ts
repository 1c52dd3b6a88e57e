/**
 * A small, strict DER reader: just enough to take a certificate's
 * extensions apart (Node's X509Certificate does not expose pathLen, name
 * constraints, extended key usage or which extensions are critical). Anything
 * that is not minimal, definite-length DER inside its bounds is refused with a
 * DerError rather than guessed at.
 */

export class DerError extends Error {}

export interface Tlv {
  tag: number;
  /** The contents, without tag and length. */
  body: Buffer;
}

/** Reads the TLVs that make up `buf`, in order; the last one must end exactly at the end. */
export function readAll(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const { tlv, next } = readOne(buf, pos);
    out.push(tlv);
    pos = next;
  }
  return out;
}

/** The single TLV that makes up `buf`. */
export function readSingle(buf: Buffer): Tlv {
  const { tlv, next } = readOne(buf, 0);
  if (next !== buf.length) throw new DerError('trailing bytes after a DER value');
  return tlv;
}

function readOne(buf: Buffer, pos: number): { tlv: Tlv; next: number } {
  if (pos + 2 > buf.length) throw new DerError('truncated DER value');
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not used in certificates');
  let len = buf[pos + 1] as number;
  let start = pos + 2;
  if (len === 0x80) throw new DerError('indefinite length is not DER');
  if (len > 0x80) {
    const n = len & 0x7f;
    if (n > 4 || start + n > buf.length) throw new DerError('DER length out of range');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[start + i] as number);
    if (buf[start] === 0 || len < 0x80) throw new DerError('DER length is not minimal');
    start += n;
  }
  const end = start + len;
  if (end > buf.length) throw new DerError('DER value runs past its container');
  return { tlv: { tag, body: buf.subarray(start, end) }, next: end };
}

export function expectTag(tlv: Tlv, tag: number, what: string): Buffer {
  if (tlv.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${tlv.tag.toString(16)}`);
  }
  return tlv.body;
}

/** Dotted form of an OBJECT IDENTIFIER body. */
export function oidText(body: Buffer): string {
  if (body.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i] as number;
    if (value === 0 && b === 0x80) throw new DerError('OBJECT IDENTIFIER arc is not minimal');
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OBJECT IDENTIFIER arc too large');
    if (!(b & 0x80)) {
      arcs.push(value);
      value = 0;
    } else if (i === body.length - 1) {
      throw new DerError('truncated OBJECT IDENTIFIER');
    }
  }
  const first = arcs.shift() as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** A non-negative INTEGER small enough for a number (pathLenConstraint). */
export function smallUnsigned(body: Buffer): number {
  if (body.length === 0 || body.length > 6) throw new DerError('INTEGER out of range');
  if ((body[0] as number) & 0x80) throw new DerError('negative INTEGER where none is allowed');
  if (body.length > 1 && body[0] === 0 && !((body[1] as number) & 0x80)) throw new DerError('INTEGER is not minimal');
  return body.readUIntBE(0, body.length);
}

export function readBoolean(body: Buffer): boolean {
  if (body.length !== 1 || (body[0] !== 0 && body[0] !== 0xff)) throw new DerError('BOOLEAN is not DER');
  return body[0] === 0xff;
}

export interface Extension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

/** The extensions of a DER certificate (an empty list for a v1 certificate). */
export function certificateExtensions(der: Buffer): Extension[] {
  const cert = readAll(expectTag(readSingle(der), 0x30, 'Certificate'));
  const tbs = readAll(expectTag(cert[0] ?? fail('Certificate without tbsCertificate'), 0x30, 'tbsCertificate'));
  const wrapped = tbs.find((t) => t.tag === 0xa3);
  if (!wrapped) return [];
  const list = readAll(expectTag(readSingle(wrapped.body), 0x30, 'Extensions'));
  const seen = new Set<string>();
  return list.map((item) => {
    const parts = readAll(expectTag(item, 0x30, 'Extension'));
    const oid = oidText(expectTag(parts[0] ?? fail('Extension without OID'), 0x06, 'extnID'));
    if (seen.has(oid)) throw new DerError(`extension ${oid} appears twice`);
    seen.add(oid);
    let critical = false;
    let i = 1;
    if (parts[i]?.tag === 0x01) {
      // An explicit FALSE is not DER, but common enough in the wild to read.
      critical = readBoolean(parts[i]!.body);
      i++;
    }
    const value = expectTag(parts[i] ?? fail(`extension ${oid} without a value`), 0x04, 'extnValue');
    if (parts.length !== i + 1) throw new DerError(`extension ${oid} has extra fields`);
    return { oid, critical, value };
  });
}

function fail(message: string): never {
  throw new DerError(message);
}

/** What the chain check reads from tbsCertificate beyond the extensions. */
export interface CertificateParts {
  serial: Buffer;
  /** The issuer and subject Name as their RDN SETs, in order. */
  issuerRdns: Tlv[];
  subjectRdns: Tlv[];
  /** subjectPublicKeyInfo's algorithm OID and its parameters (undefined when absent). */
  keyAlgorithm: string;
  keyParameters?: Tlv;
}

export function certificateParts(der: Buffer): CertificateParts {
  const cert = readAll(expectTag(readSingle(der), 0x30, 'Certificate'));
  const tbs = readAll(expectTag(cert[0] ?? fail('Certificate without tbsCertificate'), 0x30, 'tbsCertificate'));
  const fields = tbs[0]?.tag === 0xa0 ? tbs.slice(1) : tbs;
  const [serial, , issuer, , subject, spki] = fields;
  if (!serial || !issuer || !subject || !spki) fail('tbsCertificate is missing fields');
  const [algorithm] = readAll(expectTag(spki, 0x30, 'SubjectPublicKeyInfo'));
  const [oid, params, ...rest] = readAll(expectTag(algorithm ?? fail('no key algorithm'), 0x30, 'AlgorithmIdentifier'));
  if (rest.length) fail('key AlgorithmIdentifier has extra fields');
  return {
    serial: expectTag(serial, 0x02, 'serialNumber'),
    issuerRdns: readAll(expectTag(issuer, 0x30, 'issuer')),
    subjectRdns: readAll(expectTag(subject, 0x30, 'subject')),
    keyAlgorithm: oidText(expectTag(oid ?? fail('AlgorithmIdentifier without OID'), 0x06, 'algorithm')),
    ...(params ? { keyParameters: params } : {}),
  };
}

/** The validity window as written in tbsCertificate (RFC 5280 4.1.2.5). */
export function certificateValidity(der: Buffer): { notBefore: Date; notAfter: Date } {
  const cert = readAll(expectTag(readSingle(der), 0x30, 'Certificate'));
  const tbs = readAll(expectTag(cert[0] ?? fail('Certificate without tbsCertificate'), 0x30, 'tbsCertificate'));
  const fields = tbs[0]?.tag === 0xa0 ? tbs.slice(1) : tbs;
  const [notBefore, notAfter, ...rest] = readAll(
    expectTag(fields[3] ?? fail('tbsCertificate without validity'), 0x30, 'Validity'),
  );
  if (!notBefore || !notAfter || rest.length) fail('Validity is not two times');
  return { notBefore: readTime(notBefore, 'notBefore'), notAfter: readTime(notAfter, 'notAfter') };
}

const TIME_FORMS: Record<number, RegExp> = {
  0x17: /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/,
  0x18: /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/,
};

/** UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ, the only forms RFC 5280 allows. */
function readTime(tlv: Tlv, what: string): Date {
  const form = TIME_FORMS[tlv.tag];
  if (!form) fail(`${what} is neither UTCTime nor GeneralizedTime`);
  const digits = form.exec(tlv.body.toString('latin1'));
  if (!digits) fail(`${what} is not in the form ${tlv.tag === 0x17 ? 'YYMMDDHHMMSSZ' : 'YYYYMMDDHHMMSSZ'}`);
  const [y, mo, d, h, mi, s] = digits.slice(1).map(Number) as [number, number, number, number, number, number];
  const year = tlv.tag === 0x17 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, s));
  date.setUTCFullYear(year, mo - 1, d);
  const ok = mo >= 1 && mo <= 12 && d >= 1 && date.getUTCDate() === d && h <= 23 && mi <= 59 && s <= 59;
  if (!ok) fail(`${what} is not a calendar date and time`);
  return date;
}
