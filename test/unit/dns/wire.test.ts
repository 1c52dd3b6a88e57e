/**
 * agent/dns/wire.ts against dns-packet as the oracle: every message the
 * agent writes is written the same, byte for byte, by dns-packet (neither
 * compresses names) and reads back the same in dns-packet; messages with
 * compressed names (built here, as servers write them) read the same in both.
 * Hostile input (cut short anywhere, pointer loops, forward pointers, long
 * labels and names, lengths past the end) ends in a DnsWireError only.
 */
import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import {
  CLASS,
  decodeMessage,
  DnsWireError,
  encodeMessage,
  encodeName,
  TYPE,
  type Message,
} from '../../../agent/dns/wire.js';

const soa = {
  mname: 'ns1.example.test',
  rname: 'hostmaster.example.test',
  serial: 2026120701,
  refresh: 3600,
  retry: 600,
  expire: 86400,
  minimum: 60,
};
const txt = [Buffer.from('first string'), Buffer.alloc(255, 0x61), Buffer.from('')];

/** One message with every type the agent writes or reads, in ours and dns-packet's form. */
function sample(): { ours: Message; theirs: dnsPacket.Packet } {
  const ours: Message = {
    id: 0xbeef,
    flags: { qr: true, opcode: 0, aa: true, tc: false, rd: true, ra: false, rcode: 3 },
    questions: [{ name: 'Deep.Name.example.test', type: TYPE.SOA, class: CLASS.IN }],
    answers: [
      { name: 'a.example.test', type: TYPE.A, class: CLASS.IN, ttl: 60, data: '192.0.2.53' },
      { name: 'a.example.test', type: TYPE.AAAA, class: CLASS.IN, ttl: 60, data: '2001:db8::53' },
      { name: 'b.example.test', type: TYPE.AAAA, class: CLASS.IN, ttl: 60, data: '::ffff:192.0.2.1' },
      { name: 'c.example.test', type: TYPE.CNAME, class: CLASS.IN, ttl: 300, data: 'a.example.test' },
      { name: '_acme-challenge.a.example.test', type: TYPE.TXT, class: CLASS.IN, ttl: 0, data: txt },
    ],
    authority: [
      { name: 'example.test', type: TYPE.SOA, class: CLASS.IN, ttl: 4294967295, data: soa },
      { name: 'example.test', type: TYPE.NS, class: CLASS.IN, ttl: 86400, data: 'ns1.example.test' },
    ],
    additional: [{ name: 'x.example.test', type: 10, class: CLASS.IN, ttl: 1, data: Buffer.from([1, 2, 3]) }],
  };
  const theirs: dnsPacket.Packet = {
    id: 0xbeef,
    type: 'response',
    flags: 0x8000 | dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | 3,
    questions: [{ name: 'Deep.Name.example.test', type: 'SOA', class: 'IN' }],
    answers: [
      { name: 'a.example.test', type: 'A', ttl: 60, data: '192.0.2.53' },
      { name: 'a.example.test', type: 'AAAA', ttl: 60, data: '2001:db8::53' },
      { name: 'b.example.test', type: 'AAAA', ttl: 60, data: '::ffff:192.0.2.1' },
      { name: 'c.example.test', type: 'CNAME', ttl: 300, data: 'a.example.test' },
      { name: '_acme-challenge.a.example.test', type: 'TXT', ttl: 0, data: txt },
    ],
    authorities: [
      { name: 'example.test', type: 'SOA', ttl: 4294967295, data: soa },
      { name: 'example.test', type: 'NS', ttl: 86400, data: 'ns1.example.test' },
    ],
    additionals: [{ name: 'x.example.test', type: 'NULL', ttl: 1, data: Buffer.from([1, 2, 3]) }],
  };
  return { ours, theirs };
}

function update(action: 'add' | 'delete'): { ours: Message; theirs: dnsPacket.Packet } {
  const add = action === 'add';
  return {
    ours: {
      id: 7,
      flags: { qr: false, opcode: 5, aa: false, tc: false, rd: false, ra: false, rcode: 0 },
      questions: [{ name: 'example.test', type: TYPE.SOA, class: CLASS.IN }],
      answers: [],
      authority: [
        {
          name: '_acme-challenge.a.example.test',
          type: TYPE.TXT,
          class: add ? CLASS.IN : CLASS.NONE,
          ttl: add ? 60 : 0,
          data: [Buffer.from('tok')],
        },
      ],
      additional: [],
    },
    theirs: {
      id: 7,
      type: 'query',
      flags: 5 << 11,
      questions: [{ name: 'example.test', type: 'SOA', class: 'IN' }],
      authorities: [
        {
          name: '_acme-challenge.a.example.test',
          type: 'TXT',
          class: add ? 'IN' : 'NONE',
          ttl: add ? 60 : 0,
          data: [Buffer.from('tok')],
        },
      ],
    },
  };
}

describe('writing, against dns-packet', () => {
  it.each([
    ['a response with every type', sample],
    ['an UPDATE adding a TXT', () => update('add')],
    ['an UPDATE deleting one TXT (class NONE)', () => update('delete')],
  ])('%s: the same bytes, and dns-packet reads back what was written', (_what, make) => {
    const { ours, theirs } = make();
    const wire = encodeMessage(ours);
    const expected = dnsPacket.encode(theirs);
    const none = ours.authority.find((rr) => rr.class === CLASS.NONE);
    if (none) {
      // The last record: class, TTL (4), rdlength (2), rdata "\x03tok" (4).
      const classAt = expected.length - 4 - 2 - 4 - 2;
      expected.writeUInt16BE(CLASS.NONE, classAt);
    }
    expect(wire.toString('hex')).toBe(expected.toString('hex'));
    const back = dnsPacket.decode(wire);
    expect(back.id).toBe(ours.id);
    expect(back.opcode).toBe(ours.flags.opcode === 5 ? 'UPDATE' : 'QUERY');
    expect(back.flag_aa).toBe(ours.flags.aa);
    expect(back.flag_rd).toBe(ours.flags.rd);
    expect(back.questions?.map((q) => q.name)).toEqual(ours.questions.map((q) => q.name));
    expect((back.answers ?? []).length + (back.authorities ?? []).length).toBe(
      ours.answers.length + ours.authority.length,
    );
  });

  it('reads back what dns-packet writes', () => {
    const { ours, theirs } = sample();
    const m = decodeMessage(dnsPacket.encode(theirs));
    expect(m.id).toBe(ours.id);
    expect(m.flags).toEqual({ ...ours.flags, ad: false, cd: false });
    expect(m.questions).toEqual([{ name: 'deep.name.example.test', type: TYPE.SOA, class: CLASS.IN }]);
    const strip = (rrs: typeof m.answers): unknown[] => rrs.map(({ offset: _o, ...rr }) => rr);
    expect(strip(m.answers)).toEqual(
      ours.answers.map((rr) => (rr.data === '::ffff:192.0.2.1' ? { ...rr, data: '::ffff:c000:201' } : rr)),
    );
    expect(strip(m.authority)).toEqual(ours.authority);
    expect(strip(m.additional)).toEqual(ours.additional);
  });

  it.each([
    '::',
    '::1',
    '1::',
    '2001:db8::',
    '2001:db8:0:0:1:0:0:1',
    '2001:0db8:0000:0000:0000:0000:0000:0001',
    'fe80::1:2:3:4:5:6',
    '::ffff:192.0.2.1',
    '1:2:3:4:5:6:7:8',
  ])('AAAA %s: the same bytes as dns-packet, read back as dns-packet reads it', (address) => {
    const ours = encodeMessage({
      ...update('add').ours,
      authority: [{ name: 'a.test', type: TYPE.AAAA, class: CLASS.IN, ttl: 1, data: address }],
    });
    const theirs = dnsPacket.encode({
      ...update('add').theirs,
      authorities: [{ name: 'a.test', type: 'AAAA', ttl: 1, data: address }],
    });
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
    expect(decodeMessage(ours).authority[0]?.data).toBe(dnsPacket.decode(ours).authorities?.[0]?.data);
  });

  it('refuses names it cannot write', () => {
    expect(() => encodeName(`${'a'.repeat(64)}.test`)).toThrow(DnsWireError);
    expect(() => encodeName(Array(5).fill('a'.repeat(63)).join('.'))).toThrow(DnsWireError);
    expect(() => encodeName('a..test')).toThrow(DnsWireError);
    expect(() => encodeName('a b.test')).toThrow(DnsWireError);
    expect(encodeName(`${Array(3).fill('a'.repeat(63)).join('.')}.${'b'.repeat(61)}`).length).toBe(255);
  });
});

// ---- compressed names, as servers write them ----------------------------------

/** A message whose names are compressed against every earlier name (suffix pointers), as bind9 writes them. */
function compressed(): Buffer {
  const out: number[] = [];
  const seen = new Map<string, number>();
  const name = (n: string): void => {
    const labels = n.split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const at = seen.get(suffix);
      if (at !== undefined) {
        out.push(0xc0 | (at >> 8), at & 0xff);
        return;
      }
      seen.set(suffix, out.length);
      const l = Buffer.from(labels[i] as string);
      out.push(l.length, ...l);
    }
    out.push(0);
  };
  const u16 = (v: number): void => void out.push(v >> 8, v & 0xff);
  const u32 = (v: number): void => {
    u16(v >>> 16);
    u16(v & 0xffff);
  };
  const rr = (owner: string, type: number, ttl: number, rdata: () => void): void => {
    name(owner);
    u16(type);
    u16(1);
    u32(ttl);
    const lenAt = out.length;
    u16(0);
    rdata();
    const len = out.length - lenAt - 2;
    out[lenAt] = len >> 8;
    out[lenAt + 1] = len & 0xff;
  };
  out.push(0x12, 0x34, 0x84, 0x00, 0, 1, 0, 3, 0, 2, 0, 1);
  name('_acme-challenge.A.Example.Test');
  u16(TYPE.TXT);
  u16(1);
  rr('_acme-challenge.a.example.test', TYPE.CNAME, 60, () => name('tok.dns.example.test'));
  rr('tok.dns.example.test', TYPE.TXT, 60, () => out.push(3, ...Buffer.from('abc'), 2, ...Buffer.from('de')));
  rr('tok.dns.example.test', TYPE.TXT, 60, () => out.push(0));
  rr('example.test', TYPE.NS, 60, () => name('ns1.example.test'));
  rr('example.test', TYPE.SOA, 60, () => {
    name('ns1.example.test');
    name('hostmaster.example.test');
    for (const v of [1, 2, 3, 4, 5]) u32(v);
  });
  rr('ns1.example.test', TYPE.A, 60, () => out.push(10, 0, 0, 53));
  return Buffer.from(out);
}

describe('reading compressed names, against dns-packet', () => {
  it('reads what dns-packet reads', () => {
    const wire = compressed();
    const theirs = dnsPacket.decode(wire);
    const ours = decodeMessage(wire);
    const lower = (d: unknown): unknown => {
      if (Array.isArray(d)) return d.map((b: Buffer) => b.toString());
      if (typeof d === 'string') return d.toLowerCase();
      const soa = d as { mname: string; rname: string };
      return { ...soa, mname: soa.mname.toLowerCase(), rname: soa.rname.toLowerCase() };
    };
    const norm = (rrs: dnsPacket.Answer[] | undefined): unknown[] =>
      (rrs ?? []).map((rr) => ({ name: rr.name.toLowerCase(), data: lower(rr.data) }));
    const mine = (rrs: typeof ours.answers): unknown[] =>
      rrs.map((rr) => ({ name: rr.name, data: Array.isArray(rr.data) ? rr.data.map((b) => b.toString()) : rr.data }));
    expect(ours.questions[0]?.name).toBe(theirs.questions?.[0]?.name.toLowerCase());
    expect(mine(ours.answers)).toEqual(norm(theirs.answers));
    expect(mine(ours.authority)).toEqual(norm(theirs.authorities));
    expect(mine(ours.additional)).toEqual(norm(theirs.additionals));
    expect(ours.answers[0]?.data).toBe('tok.dns.example.test');
    expect(wire.length).toBeLessThan(encodeMessage(ours).length);
  });
});

// ---- hostile input ----------------------------------------------------------

function header(qd: number, an = 0): number[] {
  return [0, 1, 0x80, 0, 0, qd, 0, an, 0, 0, 0, 0];
}

function rejects(bytes: number[] | Buffer, message: RegExp): void {
  const buf = Buffer.from(bytes);
  expect(() => decodeMessage(buf)).toThrow(DnsWireError);
  expect(() => decodeMessage(buf)).toThrow(message);
}

describe('hostile input', () => {
  it('a message cut short at any byte is a DnsWireError', () => {
    const wire = compressed();
    for (let end = 0; end < wire.length; end++) {
      expect(() => decodeMessage(wire.subarray(0, end)), `cut at ${end}`).toThrow(DnsWireError);
    }
  });

  it('every single-byte change reads or fails with a DnsWireError, nothing else', () => {
    const wire = compressed();
    for (let i = 0; i < wire.length; i++) {
      for (const v of [0x00, 0x3f, 0x40, 0xc0, 0xff]) {
        const bad = Buffer.from(wire);
        bad[i] = v;
        try {
          decodeMessage(bad);
        } catch (err) {
          expect(err, `byte ${i} = ${v}`).toBeInstanceOf(DnsWireError);
        }
      }
    }
  });

  it('refuses pointer loops and pointers that do not lead backwards', () => {
    rejects([...header(1), 0xc0, 12, 0, 1, 0, 1], /does not point backwards/);
    rejects([...header(1), 0xc0, 14, 0, 1, 0, 1], /does not point backwards/);
    // "a" then a pointer back to "a": a loop through a label.
    rejects([...header(1), 1, 0x61, 0xc0, 12, 0, 1, 0, 1], /does not point backwards/);
    // Two names pointing at each other.
    rejects([...header(2), 1, 0x61, 0xc0, 20, 0, 1, 0, 1, 1, 0x62, 0xc0, 12, 0, 1, 0, 1], /does not point backwards/);
  });

  it('refuses a label of 64 (extended label types), a name over 255 bytes, and record lengths past the end', () => {
    rejects([...header(1), 0x40, ...Buffer.alloc(64, 0x61), 0, 0, 1, 0, 1], /unknown type/);
    const long = Array.from({ length: 5 }, () => [63, ...Buffer.alloc(63, 0x61)]).flat();
    rejects([...header(1), ...long, 0, 0, 1, 0, 1], /longer than 255/);
    // A long name made of pointers to earlier long names is as long.
    const part = [63, ...Buffer.alloc(63, 0x61)];
    rejects([...header(2), ...part, ...part, 0, 0, 1, 0, 1, ...part, ...part, 0xc0, 12, 0, 1, 0, 1], /longer than 255/);
    rejects([...header(0, 1), 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4], /ends inside record data/);
    rejects([...header(0, 1), 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 3, 1, 2, 3], /not 4 bytes/);
    rejects([...header(0, 1), 0, 0, 16, 0, 1, 0, 0, 0, 0, 0, 3, 5, 0x61, 0x62], /ends inside/);
    rejects([...header(0, 1), 0, 0, 2, 0, 1, 0, 0, 0, 0, 0, 2, 1, 0x61, 0], /left over|ends inside/);
    rejects([...header(0, 0), 9], /follow the last record/);
  });
});
