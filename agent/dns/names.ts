/**
 * DNS names on the wire and the bounds-checked reader every part of a message
 * is read with: a name is written uncompressed and read with compression
 * pointers, which may only lead backwards, so no hostile message can make a
 * reader loop, and every overrun is a DnsWireError, never a Buffer exception.
 */
import { ChallengeError, oneLine } from '../lib/errors.js';

/** A message that cannot be read or written: `offset` is where reading stopped. */
export class DnsWireError extends ChallengeError {
  constructor(
    message: string,
    readonly offset = -1,
  ) {
    super(message);
  }
}

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, OPT: 41, TSIG: 250, ANY: 255 } as const;
export const CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;
export const OPCODE = { QUERY: 0, UPDATE: 5 } as const;

const MAX_NAME = 255;
const MAX_LABEL = 63;

/** `name` in wire form, uncompressed; "" or "." is the root. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = trimmed === '' ? [] : trimmed.split('.');
  const parts: Buffer[] = [];
  const shown = oneLine(name, 100);
  for (const label of labels) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length === 0) throw new DnsWireError(`the name "${shown}" has an empty label`);
    if (bytes.length > MAX_LABEL) throw new DnsWireError(`a label of "${shown}" is longer than ${MAX_LABEL} bytes`);
    if (/[^\x21-\x7e]|\\/.test(label))
      throw new DnsWireError(`the name "${shown}" has a space, a backslash or a character outside ASCII`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > MAX_NAME) throw new DnsWireError(`the name "${shown}" is longer than ${MAX_NAME} bytes`);
  return out;
}

/** Bounds-checked reads over one message; names resolve compression pointers against the whole of it. */
export class Reader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
  ) {}

  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new DnsWireError(`the message ends inside ${what} (at byte ${this.pos} of ${this.buf.length})`, this.pos);
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++] as number;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const v = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }
  name(): string {
    const [name, next] = readName(this.buf, this.pos);
    this.pos = next;
    return name;
  }
}

function labelText(label: Buffer): string {
  let out = '';
  for (const c of label) {
    if (c === 0x2e || c === 0x5c) out += `\\${String.fromCharCode(c)}`;
    else if (c > 0x20 && c < 0x7f) out += String.fromCharCode(c).toLowerCase();
    else out += `\\${String(c).padStart(3, '0')}`;
  }
  return out;
}

/** The name at `start` (lower-case, no trailing dot, "" for the root) and the offset after it. */
export function readName(buf: Buffer, start: number): [string, number] {
  const labels: string[] = [];
  let pos = start;
  let end = -1;
  let wireLength = 1;
  // Start of the run of labels being read: a pointer must lead before it.
  let segment = start;
  for (;;) {
    if (pos >= buf.length) throw new DnsWireError(`the message ends inside a name (at byte ${pos})`, pos);
    const len = buf[pos] as number;
    if (len === 0) {
      pos += 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsWireError(`the message ends inside a name pointer (at byte ${pos})`, pos);
      const target = ((len & 0x3f) << 8) | (buf[pos + 1] as number);
      // Only backwards, before every byte of the name read so far: no loop can form.
      if (target >= segment) throw new DnsWireError(`a name pointer at byte ${pos} does not point backwards`, pos);
      if (end < 0) end = pos + 2;
      pos = target;
      segment = target;
      continue;
    }
    if (kind !== 0) throw new DnsWireError(`a label at byte ${pos} has an unknown type (0x${len.toString(16)})`, pos);
    if (pos + 1 + len > buf.length) throw new DnsWireError(`the message ends inside a label (at byte ${pos})`, pos);
    wireLength += len + 1;
    if (wireLength > MAX_NAME)
      throw new DnsWireError(`a name at byte ${start} is longer than ${MAX_NAME} bytes`, start);
    labels.push(labelText(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return [labels.join('.'), end < 0 ? pos : end];
}

/** Names compared as DNS compares them: ASCII case-insensitive, with or without the trailing dot. */
export function sameName(a: string, b: string): boolean {
  const norm = (n: string): string => (n.endsWith('.') ? n.slice(0, -1) : n).toLowerCase();
  return norm(a) === norm(b);
}
