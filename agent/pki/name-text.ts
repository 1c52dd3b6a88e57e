/**
 * Names inside certificates as text, for the chain check's messages and
 * comparisons: ASN.1 string values decoded, a Name as "CN=…, O=…", an
 * iPAddress of any length (a malformed one is shown, never a crash).
 */
import { readAll, oidText, type Tlv } from './der-read.js';

/** The text of an ASN.1 string value, or undefined when `tlv` is not one of the string types. */
export function stringValue(tlv: Tlv): string | undefined {
  switch (tlv.tag) {
    case 0x0c: // UTF8String
      return tlv.body.toString('utf8');
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x14: // T61String, read as Latin-1
    case 0x16: // IA5String
    case 0x1a: // VisibleString
      return tlv.body.toString('latin1');
    case 0x1e: // BMPString
      return tlv.body.length % 2 ? undefined : Buffer.from(tlv.body).swap16().toString('utf16le');
    case 0x1c: {
      // UniversalString
      if (tlv.body.length % 4) return undefined;
      const points: number[] = [];
      for (let i = 0; i < tlv.body.length; i += 4) points.push(tlv.body.readUInt32BE(i));
      return points.every((p) => p <= 0x10ffff) ? String.fromCodePoint(...points) : undefined;
    }
    default:
      return undefined;
  }
}

const SHORT: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

/** A Name (its RDN SETs) as one line, e.g. "O=Example, CN=www". */
export function dirNameOf(rdns: Tlv[]): string {
  const parts = rdns.map((rdn) =>
    readAll(rdn.body)
      .map((ava) => {
        const [type, value] = readAll(ava.body);
        if (!type || !value) return '?';
        const oid = oidText(type.body);
        return `${SHORT[oid] ?? oid}=${stringValue(value) ?? `#${value.body.toString('hex')}`}`;
      })
      .join('+'),
  );
  return parts.length ? parts.join(', ') : '(empty)';
}

/** An iPAddress name: dotted IPv4, compressed IPv6, or its bytes in hex when it is neither. */
export function ipText(ip: Buffer): string {
  if (ip.length === 4) return [...ip].join('.');
  if (ip.length !== 16) return `the IP address of ${ip.length} bytes ${ip.toString('hex')} (neither IPv4 nor IPv6)`;
  const groups = [...Array(8).keys()].map((k) => ip.readUInt16BE(k * 2).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.replace(/^\[|\]$/g, '');
}

/** One DER TLV from a tag and its contents. */
export function encodeTlv(tag: number, body: Buffer): Buffer {
  const len = body.length;
  const bytes: number[] = [];
  for (let l = len; l > 0; l = Math.floor(l / 256)) bytes.unshift(l & 0xff);
  const header = len < 0x80 ? [tag, len] : [tag, 0x80 | bytes.length, ...bytes];
  return Buffer.concat([Buffer.from(header), body]);
}
