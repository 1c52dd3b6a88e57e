/**
 * The data part of the record types the dns-01 solver reads or writes (A,
 * AAAA, NS, CNAME, SOA, TXT, TSIG), to and from the wire; any other type
 * stays raw bytes. Split from wire.ts, which frames messages and names.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { DnsWireError, encodeName, Reader, TYPE } from './names.js';

export interface Soa {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/** RFC 8945 section 4.2; timeSigned in seconds since the epoch (48 bits). */
export interface TsigRdata {
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
}

/** A/AAAA: the address; NS/CNAME: a name; TXT: the character-strings; other types: raw bytes. */
export type RData = string | Buffer[] | Soa | TsigRdata | Buffer;

// ---- addresses --------------------------------------------------------------

function ipv4Bytes(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

function ipv6Bytes(text: string): Buffer {
  // An IPv4 tail ("::ffff:192.0.2.1") becomes its two hex groups first.
  const s = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) => {
    const hex = (x: string, y: string): string => ((Number(x) << 8) | Number(y)).toString(16);
    return `${hex(a, b)}:${hex(c, d)}`;
  });
  const [left, right] = s.includes('::') ? s.split('::') : [s, undefined];
  const parse = (part: string | undefined): number[] => (part ? part.split(':').map((h) => parseInt(h, 16)) : []);
  const head = parse(left);
  const rest = parse(right);
  const zeros = right === undefined ? 0 : 8 - head.length - rest.length;
  const groups = [...head, ...new Array<number>(zeros).fill(0), ...rest];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** RFC 5952 text: lower-case, leading zeros dropped, the longest run of two or more zero groups as "::". */
export function formatIPv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j > i ? j : i + 1;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---- writing ----------------------------------------------------------------

function expect<T>(ok: boolean, data: unknown, type: number): T {
  if (!ok) throw new DnsWireError(`the data given for a record of type ${type} does not fit that type`);
  return data as T;
}

function encodeSoa(s: Soa): Buffer {
  const nums = Buffer.alloc(20);
  [s.serial, s.refresh, s.retry, s.expire, s.minimum].forEach((n, i) => nums.writeUInt32BE(n >>> 0, i * 4));
  return Buffer.concat([encodeName(s.mname), encodeName(s.rname), nums]);
}

function encodeTsig(t: TsigRdata): Buffer {
  const mid = Buffer.alloc(10);
  mid.writeUIntBE(t.timeSigned, 0, 6);
  mid.writeUInt16BE(t.fudge, 6);
  mid.writeUInt16BE(t.mac.length, 8);
  const tail = Buffer.alloc(6);
  tail.writeUInt16BE(t.originalId, 0);
  tail.writeUInt16BE(t.error, 2);
  tail.writeUInt16BE(t.other.length, 4);
  return Buffer.concat([encodeName(t.algorithm.toLowerCase()), mid, t.mac, tail, t.other]);
}

function encodeTxt(strings: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of strings) {
    if (s.length > 255) throw new DnsWireError('a TXT character-string is longer than 255 bytes');
    parts.push(Buffer.from([s.length]), s);
  }
  return Buffer.concat(parts);
}

export function encodeRdata(type: number, data: RData): Buffer {
  const isText = typeof data === 'string';
  switch (type) {
    case TYPE.A:
      return ipv4Bytes(expect<string>(isText && isIPv4(data), data, type));
    case TYPE.AAAA:
      return ipv6Bytes(expect<string>(isText && isIPv6(data), data, type));
    case TYPE.NS:
    case TYPE.CNAME:
      return encodeName(expect<string>(isText, data, type));
    case TYPE.SOA:
      return encodeSoa(expect<Soa>(typeof data === 'object' && 'mname' in data, data, type));
    case TYPE.TXT:
      return encodeTxt(expect<Buffer[]>(Array.isArray(data), data, type));
    case TYPE.TSIG:
      return encodeTsig(expect<TsigRdata>(typeof data === 'object' && 'algorithm' in data, data, type));
    default:
      return expect<Buffer>(Buffer.isBuffer(data), data, type);
  }
}

// ---- reading ----------------------------------------------------------------

function decodeSoa(r: Reader): Soa {
  const mname = r.name();
  const rname = r.name();
  const n = (): number => r.u32('an SOA record');
  return { mname, rname, serial: n(), refresh: n(), retry: n(), expire: n(), minimum: n() };
}

function decodeTsig(r: Reader): TsigRdata {
  const algorithm = r.name();
  const timeSigned = r.bytes(6, 'a TSIG record').readUIntBE(0, 6);
  const fudge = r.u16('a TSIG record');
  const mac = r.bytes(r.u16('a TSIG record'), 'a TSIG MAC');
  const originalId = r.u16('a TSIG record');
  const error = r.u16('a TSIG record');
  const other = r.bytes(r.u16('a TSIG record'), 'TSIG other data');
  return { algorithm, timeSigned, fudge, mac, originalId, error, other };
}

function decodeTxt(r: Reader, end: number): Buffer[] {
  const strings: Buffer[] = [];
  while (r.pos < end) strings.push(r.bytes(r.u8('a TXT record'), 'a TXT character-string'));
  return strings;
}

function decodeTyped(type: number, r: Reader, end: number): RData {
  switch (type) {
    case TYPE.A:
      if (end - r.pos !== 4) throw new DnsWireError(`an A record at byte ${r.pos} is not 4 bytes long`, r.pos);
      return [...r.bytes(4, 'an A record')].join('.');
    case TYPE.AAAA:
      if (end - r.pos !== 16) throw new DnsWireError(`an AAAA record at byte ${r.pos} is not 16 bytes long`, r.pos);
      return formatIPv6(r.bytes(16, 'an AAAA record'));
    case TYPE.NS:
    case TYPE.CNAME:
      return r.name();
    case TYPE.SOA:
      return decodeSoa(r);
    case TYPE.TXT:
      return decodeTxt(r, end);
    case TYPE.TSIG:
      return decodeTsig(r);
    default:
      return r.bytes(end - r.pos, 'record data');
  }
}

/** The data of a record of `type` from `start` up to `end` (the record's length says where it ends). */
export function decodeRdata(type: number, buf: Buffer, start: number, end: number): RData {
  // Reads inside the record's data must not run past its length; names may point back into the message.
  const r = new Reader(buf.subarray(0, end), start);
  const data = decodeTyped(type, r, end);
  if (r.pos !== end) {
    throw new DnsWireError(`a record of type ${type} at byte ${start} has ${end - r.pos} bytes left over`, start);
  }
  return data;
}
