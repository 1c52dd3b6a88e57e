/**
 * The little DER the agent writes itself: a PKCS#10 request with the
 * subjectAltName extension (for ACME finalize) and a self-signed certificate
 * (the placeholder). Keys and signatures come from node:crypto; this module
 * only lays out the ASN.1, so no ASN.1 library is loaded at every start.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

type Der = Buffer;

function tlv(tag: number, body: Buffer): Der {
  const len = body.length;
  const header =
    len < 0x80
      ? Buffer.from([tag, len])
      : len < 0x100
        ? Buffer.from([tag, 0x81, len])
        : len < 0x10000
          ? Buffer.from([tag, 0x82, len >> 8, len & 0xff])
          : Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  return Buffer.concat([header, body]);
}

const seq = (...items: Der[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Der[]) => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer) => tlv(0x04, b);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const bits = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const explicit = (n: number, inner: Der) => tlv(0xa0 + n, inner);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const NULL = Buffer.from([0x05, 0x00]);

function integer(value: Buffer | number): Der {
  let b = typeof value === 'number' ? Buffer.from([value]) : value;
  while (b.length > 1 && b[0] === 0 && (b[1] as number) < 0x80) b = b.subarray(1);
  if ((b[0] as number) >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Der {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Der {
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  const iso = d.toISOString().replace(/[-:T]|\.\d+/g, '');
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii'))
    : tlv(0x18, Buffer.from(iso, 'ascii'));
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  extensionRequest: '1.2.840.113549.1.9.14',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  rsaSha256: '1.2.840.113549.1.1.11',
};

/** The signature algorithm for a key, and how node:crypto must sign for it. */
function algorithmFor(key: KeyObject): { id: Der; hash: string } {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return { id: seq(oid(OID.rsaSha256), NULL), hash: 'sha256' };
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'secp384r1'
      ? { id: seq(oid(OID.ecdsaSha384)), hash: 'sha384' }
      : { id: seq(oid(OID.ecdsaSha256)), hash: 'sha256' };
  }
  throw new Error(`unsupported key type ${type}`);
}

function name(parts: [string, string][]): Der {
  return seq(...parts.map(([type, value]) => set(seq(oid(type), utf8(value)))));
}

function generalNames(names: string[]): Der {
  return seq(
    ...names.map((n) => {
      const version = isIP(n);
      if (!version) return tlv(0x82, Buffer.from(n, 'ascii'));
      const bytes = version === 4 ? Buffer.from(n.split('.').map(Number)) : ipv6Bytes(n);
      return tlv(0x87, bytes);
    }),
  );
}

/** The 16 bytes of an IPv6 address in any textual form node:net accepts, a dotted IPv4 tail included. */
export function ipv6Bytes(ip: string): Buffer {
  let text = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    // The last 32 bits written as a dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4): two groups.
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail = ''] = text.split('::') as [string, string?];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = text.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.from(groups.flatMap((g: string) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/** X.520's upper bound for a commonName (ub-common-name). */
export const MAX_COMMON_NAME = 64;

function extension(id: string, value: Der, critical = false): Der {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function signed(tbs: Der, key: KeyObject): Der {
  const { id, hash } = algorithmFor(key);
  return seq(tbs, id, bits(sign(hash, tbs, key)));
}

/**
 * PKCS#10 CSR for `names`, signed by `keyPem`. The first name is also the
 * subject's CN when it fits X.520's 64 characters; a longer one leaves the
 * subject empty (the subjectAltName carries every name, and is then marked
 * critical as RFC 5280 asks of a certificate without a subject).
 */
export function createCsr(names: string[], keyPem: string): Der {
  const key = createPrivateKey(keyPem);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const first = names[0] as string;
  const subject: [string, string][] = first.length <= MAX_COMMON_NAME ? [[OID.commonName, first]] : [];
  const san = extension(OID.subjectAltName, generalNames(names), subject.length === 0);
  const attributes = explicit(0, seq(oid(OID.extensionRequest), set(seq(san))));
  const info = seq(integer(0), name(subject), spki, attributes);
  return signed(info, key);
}

/** A self-signed end-entity certificate; PEM. */
export function createSelfSigned(opts: {
  keyPem: string;
  names: string[];
  subject: [string, string][];
  notBefore: Date;
  notAfter: Date;
}): string {
  const key = createPrivateKey(opts.keyPem);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01;
  // X.520 bounds CN and O at 64 characters: a longer value is left out, never written.
  const parts = opts.subject.filter(([, v]) => v.length <= MAX_COMMON_NAME);
  const subject = name(parts.map(([k, v]) => [k === 'CN' ? OID.commonName : OID.organization, v]));
  const extensions = explicit(
    3,
    seq(
      extension(OID.basicConstraints, seq(), true),
      // digitalSignature only: one byte, seven unused bits (DER wants the minimal form).
      extension(OID.keyUsage, tlv(0x03, Buffer.from([0x07, 0x80])), true),
      extension(OID.extKeyUsage, seq(oid(OID.serverAuth))),
      extension(OID.subjectAltName, generalNames(opts.names), parts.length === 0),
    ),
  );
  const tbs = seq(
    explicit(0, integer(2)),
    integer(serial),
    algorithmFor(key).id,
    subject,
    seq(time(opts.notBefore), time(opts.notAfter)),
    subject,
    spki,
    extensions,
  );
  const der = signed(tbs, key);
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}
