/**
 * TSIG (RFC 8945): the shared-secret signature bind9 and other servers require
 * on a dynamic update. A request is signed by appending a TSIG record whose
 * MAC covers the message and the TSIG variables; the answer is signed over the
 * request's MAC, the answer and its own variables, and is checked here before
 * anything in it is believed. No maintained npm package does this, so it is
 * our own code, proven byte for byte against dig and nsupdate in the tests.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CLASS, encodeName, TYPE } from './names.js';
import { decodeMessage, encodeRecord, type TsigRdata } from './wire.js';

export interface TsigKey {
  name: string;
  algorithm: 'hmac-sha256' | 'hmac-sha512';
  secret: Buffer;
}

/** The TSIG error field's values (RFC 8945 section 5.3.2). */
export const TSIG_ERRORS: Record<number, string> = { 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' };

const DIGEST = { 'hmac-sha256': 'sha256', 'hmac-sha512': 'sha512' } as const;

/** The TSIG variables of RFC 8945 section 4.3.3, in canonical (lower-case, uncompressed) form. */
function variables(key: TsigKey, t: Omit<TsigRdata, 'mac' | 'originalId'>): Buffer {
  const fixed = Buffer.alloc(6);
  fixed.writeUInt16BE(CLASS.ANY, 0);
  fixed.writeUInt32BE(0, 2);
  const times = Buffer.alloc(8);
  times.writeUIntBE(t.timeSigned, 0, 6);
  times.writeUInt16BE(t.fudge, 6);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(t.error, 0);
  tail.writeUInt16BE(t.other.length, 2);
  return Buffer.concat([
    encodeName(key.name.toLowerCase()),
    fixed,
    encodeName(t.algorithm.toLowerCase()),
    times,
    tail,
    t.other,
  ]);
}

function mac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(DIGEST[key.algorithm], key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function withId(msg: Buffer, id: number): Buffer {
  const copy = Buffer.from(msg);
  copy.writeUInt16BE(id, 0);
  return copy;
}

export interface SignOptions {
  /** Seconds since the epoch. */
  timeSigned: number;
  fudge?: number;
  /** The message's own id unless given. */
  originalId?: number;
  /** Signing an answer (as a server does; the tests' stand-in servers): the request's MAC, which the MAC covers. */
  requestMac?: Buffer;
  /** TSIG error field of an answer (default 0). */
  error?: number;
}

/** `msg` with a TSIG record appended (ARCOUNT + 1) and the MAC, which the answer's MAC covers. */
export function signMessage(msg: Buffer, key: TsigKey, opts: SignOptions): { signed: Buffer; mac: Buffer } {
  const originalId = opts.originalId ?? msg.readUInt16BE(0);
  const t = {
    algorithm: `${key.algorithm}.`,
    timeSigned: opts.timeSigned,
    fudge: opts.fudge ?? 300,
    error: opts.error ?? 0,
    other: Buffer.alloc(0),
  };
  const prior = opts.requestMac ? [u16(opts.requestMac.length), opts.requestMac] : [];
  const digest = mac(key, [...prior, withId(msg, originalId), variables(key, t)]);
  const rr = encodeRecord({
    name: key.name.toLowerCase(),
    type: TYPE.TSIG,
    class: CLASS.ANY,
    ttl: 0,
    data: { ...t, mac: digest, originalId },
  });
  const signed = Buffer.concat([msg, rr]);
  // ARCOUNT: bytes 10-11 of the header.
  signed.writeUInt16BE(msg.readUInt16BE(10) + 1, 10);
  return { signed, mac: digest };
}

export type VerifyResult =
  | { ok: true }
  /** reason: what failed; tsigError: the name of the server's TSIG error (it could not verify the request). */
  | { ok: false; reason: string; tsigError?: string };

/**
 * Whether `resp` is the answer to a request whose MAC was `requestMac`,
 * signed with `key` within its fudge of `now` (seconds since the epoch).
 * `resp` must decode (decodeMessage's DnsWireError otherwise).
 */
export function verifyResponse(resp: Buffer, requestMac: Buffer, key: TsigKey, now: number): VerifyResult {
  const m = decodeMessage(resp);
  const last = m.additional[m.additional.length - 1];
  if (!last || last.type !== TYPE.TSIG) return { ok: false, reason: 'the answer is not signed (no TSIG record)' };
  if (m.additional.some((rr, i) => rr.type === TYPE.TSIG && i !== m.additional.length - 1)) {
    return { ok: false, reason: 'the TSIG record is not the last record of the answer' };
  }
  const t = last.data as TsigRdata;
  const tsigError = TSIG_ERRORS[t.error] ?? (t.error !== 0 ? `TSIG error ${t.error}` : undefined);
  if (tsigError) return { ok: false, reason: `the server could not verify the request (${tsigError})`, tsigError };
  if (last.name !== key.name.toLowerCase().replace(/\.$/, '')) {
    return { ok: false, reason: 'the answer is signed with another key name' };
  }
  if (t.algorithm !== key.algorithm) return { ok: false, reason: 'the answer is signed with another algorithm' };
  if (last.class !== CLASS.ANY || last.ttl !== 0)
    return { ok: false, reason: 'the TSIG record is not of class ANY with TTL 0' };
  const body = withId(resp.subarray(0, last.offset), t.originalId);
  body.writeUInt16BE(body.readUInt16BE(10) - 1, 10);
  const expected = mac(key, [u16(requestMac.length), requestMac, body, variables(key, t)]);
  if (t.mac.length !== expected.length || !timingSafeEqual(t.mac, expected)) {
    return { ok: false, reason: "the answer's TSIG MAC does not match (another secret, or the answer was changed)" };
  }
  if (Math.abs(now - t.timeSigned) > t.fudge) {
    return {
      ok: false,
      reason: `the answer was signed ${now - t.timeSigned} s from now, outside the fudge of ${t.fudge} s`,
    };
  }
  return { ok: true };
}
