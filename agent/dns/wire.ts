/**
 * DNS messages on the wire (RFC 1035, RFC 2136 for UPDATE's sections, RFC
 * 8945 for the TSIG record): what the dns-01 solver sends to an authoritative
 * server and reads back. Names are written without compression and read with
 * it; an answer comes from the network, so every read is bounds-checked and a
 * broken or hostile message ends in a DnsWireError, never in an exception
 * from Buffer. Record types the agent does not use are kept as raw bytes.
 */
import { DnsWireError, encodeName, Reader } from './names.js';
import { decodeRdata, encodeRdata, type RData } from './rdata.js';

export { CLASS, DnsWireError, encodeName, OPCODE, sameName, TYPE } from './names.js';

export type { RData, Soa, TsigRdata } from './rdata.js';

export interface Flags {
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** Authentic data and checking disabled (RFC 4035); written only when set. */
  ad?: boolean;
  cd?: boolean;
  rcode: number;
}

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: RData;
}

/** A record as read: where it starts in the message (TSIG is verified over the bytes before it). */
export interface DecodedRecord extends ResourceRecord {
  offset: number;
}

/** For UPDATE, questions is the zone section, answers the prerequisites and authority the updates. */
export interface Message {
  id: number;
  flags: Flags;
  questions: Question[];
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
}

export interface DecodedMessage extends Message {
  answers: DecodedRecord[];
  authority: DecodedRecord[];
  additional: DecodedRecord[];
}

export const HEADER_LENGTH = 12;

// ---- writing ----------------------------------------------------------------

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function encodeFlags(f: Flags): number {
  return (
    (f.qr ? 0x8000 : 0) |
    ((f.opcode & 0xf) << 11) |
    (f.aa ? 0x0400 : 0) |
    (f.tc ? 0x0200 : 0) |
    (f.rd ? 0x0100 : 0) |
    (f.ra ? 0x0080 : 0) |
    (f.ad ? 0x0020 : 0) |
    (f.cd ? 0x0010 : 0) |
    (f.rcode & 0xf)
  );
}

export function encodeRecord(rr: ResourceRecord): Buffer {
  const rdata = encodeRdata(rr.type, rr.data);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rr.type, 0);
  fixed.writeUInt16BE(rr.class, 2);
  fixed.writeUInt32BE(rr.ttl >>> 0, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([encodeName(rr.name), fixed, rdata]);
}

export function encodeMessage(m: Message): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt16BE(m.id & 0xffff, 0);
  header.writeUInt16BE(encodeFlags(m.flags), 2);
  header.writeUInt16BE(m.questions.length, 4);
  header.writeUInt16BE(m.answers.length, 6);
  header.writeUInt16BE(m.authority.length, 8);
  header.writeUInt16BE(m.additional.length, 10);
  const parts: Buffer[] = [header];
  for (const q of m.questions) parts.push(encodeName(q.name), u16(q.type), u16(q.class));
  for (const rr of [...m.answers, ...m.authority, ...m.additional]) parts.push(encodeRecord(rr));
  return Buffer.concat(parts);
}

// ---- reading ----------------------------------------------------------------

function decodeFlags(v: number): Flags {
  return {
    qr: (v & 0x8000) !== 0,
    opcode: (v >> 11) & 0xf,
    aa: (v & 0x0400) !== 0,
    tc: (v & 0x0200) !== 0,
    rd: (v & 0x0100) !== 0,
    ra: (v & 0x0080) !== 0,
    ad: (v & 0x0020) !== 0,
    cd: (v & 0x0010) !== 0,
    rcode: v & 0xf,
  };
}

function readRecord(r: Reader): DecodedRecord {
  const offset = r.pos;
  const name = r.name();
  const type = r.u16('a record type');
  const klass = r.u16('a record class');
  const ttl = r.u32('a record TTL');
  const rdlength = r.u16('a record length');
  r.need(rdlength, 'record data');
  const rdataEnd = r.pos + rdlength;
  const data = decodeRdata(type, r.buf, r.pos, rdataEnd);
  r.pos = rdataEnd;
  return { name, type, class: klass, ttl, data, offset };
}

/** Header and question section only: enough to match an answer to its request. */
export function decodeHead(buf: Buffer): {
  id: number;
  flags: Flags;
  questions: Question[];
  counts: number[];
  end: number;
} {
  const r = new Reader(buf);
  r.need(HEADER_LENGTH, 'the header');
  const id = r.u16('the header');
  const flags = decodeFlags(r.u16('the header'));
  const counts = [r.u16('the header'), r.u16('the header'), r.u16('the header'), r.u16('the header')];
  const questions: Question[] = [];
  for (let i = 0; i < (counts[0] as number); i++) {
    const name = r.name();
    questions.push({ name, type: r.u16('a question'), class: r.u16('a question') });
  }
  return { id, flags, questions, counts, end: r.pos };
}

export function decodeMessage(buf: Buffer): DecodedMessage {
  const head = decodeHead(buf);
  const r = new Reader(buf, head.end);
  const section = (count: number): DecodedRecord[] => {
    const out: DecodedRecord[] = [];
    for (let i = 0; i < count; i++) out.push(readRecord(r));
    return out;
  };
  const [, an, ns, ar] = head.counts as [number, number, number, number];
  const answers = section(an);
  const authority = section(ns);
  const additional = section(ar);
  if (r.pos !== buf.length) throw new DnsWireError(`${buf.length - r.pos} bytes follow the last record`, r.pos);
  return { id: head.id, flags: head.flags, questions: head.questions, answers, authority, additional };
}
