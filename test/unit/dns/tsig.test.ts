/**
 * TSIG is our own crypto code, so it is proven against other implementations:
 * dig and nsupdate (bind9's own TSIG) send signed messages to a UDP socket of
 * this test, which strips the TSIG record and signs the rest again with
 * agent/dns/tsig.ts using their time, fudge and original id: the bytes must
 * be identical. The verification of answers is tampered with byte by byte.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTsigSecret } from '../../../agent/dns/key-file.js';
import { signMessage, verifyResponse, type TsigKey } from '../../../agent/dns/tsig.js';
import { CLASS, decodeMessage, encodeMessage, TYPE, type TsigRdata } from '../../../agent/dns/wire.js';

/** The first `count` datagrams `argv` sends to a local UDP port (its placeholder PORT), answering each with `reply`. */
async function capture(
  argv: string[],
  count: number,
  opts: { stdin?: string; reply?: (msg: Buffer) => Buffer | undefined } = {},
): Promise<Buffer[]> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const port = String(sock.address().port);
  const got: Buffer[] = [];
  const child = spawn(
    argv[0] as string,
    argv.slice(1).map((a) => a.replace('PORT', port)),
    { stdio: 'pipe' },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => (stderr += d.toString()));
  if (opts.stdin !== undefined) child.stdin.end(opts.stdin.replace('PORT', port));
  try {
    return await new Promise<Buffer[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`got ${got.length} of ${count} messages; output: ${stderr}`)),
        10_000,
      );
      child.on('exit', () =>
        setTimeout(() => reject(new Error(`${argv[0]} exited after ${got.length} messages: ${stderr}`)), 200),
      );
      sock.on('message', (msg, rinfo) => {
        got.push(msg);
        if (got.length === count) {
          clearTimeout(timer);
          resolve(got);
          return;
        }
        const answer = opts.reply?.(msg);
        if (answer) sock.send(answer, rinfo.port, rinfo.address);
      });
    });
  } finally {
    child.kill('SIGKILL');
    sock.close();
  }
}

/** Strips the TSIG record of `captured` and signs again with our code and the sender's variables. */
function resign(captured: Buffer, key: TsigKey): { ours: Buffer; theirs: TsigRdata } {
  const m = decodeMessage(captured);
  const tsig = m.additional[m.additional.length - 1];
  expect(tsig?.type).toBe(TYPE.TSIG);
  const theirs = tsig?.data as TsigRdata;
  expect(theirs.algorithm).toBe(key.algorithm);
  const stripped = Buffer.from(captured.subarray(0, tsig?.offset));
  stripped.writeUInt16BE(m.additional.length - 1, 10);
  const { signed, mac } = signMessage(stripped, key, {
    timeSigned: theirs.timeSigned,
    fudge: theirs.fudge,
    originalId: theirs.originalId,
  });
  expect(mac.equals(theirs.mac)).toBe(true);
  return { ours: signed, theirs };
}

const ALGORITHMS = ['hmac-sha256', 'hmac-sha512'] as const;

function newKey(algorithm: TsigKey['algorithm']): TsigKey {
  return { name: `k-${randomBytes(3).toString('hex')}.example`, algorithm, secret: randomBytes(32) };
}

describe.each(ALGORITHMS)('TSIG %s against bind9 tools', (algorithm) => {
  it('signs a query exactly as dig -y does', async () => {
    const key = newKey(algorithm);
    const [q] = await capture(
      [
        'dig',
        '-y',
        `${algorithm}:${key.name}:${key.secret.toString('base64')}`,
        '@127.0.0.1',
        '-p',
        'PORT',
        'example.test',
        'SOA',
        '+tries=1',
        '+time=5',
      ],
      1,
    );
    const { ours } = resign(q as Buffer, key);
    expect(ours.toString('hex')).toBe((q as Buffer).toString('hex'));
    // dig writes its one name uncompressed: the message re-encodes to the same bytes with our encoder, too.
    expect(encodeMessage(decodeMessage(q as Buffer)).toString('hex')).toBe((q as Buffer).toString('hex'));
    // A different secret gives different bytes: the comparison can fail.
    const m = decodeMessage(q as Buffer);
    const tsigAt = m.additional[m.additional.length - 1]?.offset;
    const stripped = Buffer.from((q as Buffer).subarray(0, tsigAt));
    stripped.writeUInt16BE(m.additional.length - 1, 10);
    const theirs = m.additional[m.additional.length - 1]?.data as TsigRdata;
    const other = signMessage(stripped, { ...key, secret: randomBytes(32) }, { timeSigned: theirs.timeSigned });
    expect(other.signed.equals(q as Buffer)).toBe(false);
  }, 20_000);

  it('signs an update exactly as nsupdate -k does, with the key tsig-keygen wrote', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsig-'));
    try {
      const name = `k-${randomBytes(3).toString('hex')}.example`;
      const keyText = await new Promise<string>((resolve) => {
        const p = spawn('tsig-keygen', ['-a', algorithm, name]);
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('close', () => resolve(out)); // after stdout has ended: 'exit' may come first
      });
      writeFileSync(join(dir, 'key'), keyText);
      const parsed = parseTsigSecret(keyText);
      expect(parsed.name).toBe(name);
      expect(parsed.algorithm).toBe(algorithm);
      const key: TsigKey = { name, algorithm, secret: parsed.secret };
      const [u] = await capture(['nsupdate', '-k', join(dir, 'key')], 1, {
        stdin:
          'server 127.0.0.1 PORT\nzone example.test\nupdate add _acme-challenge.a.example.test 60 TXT "v1" "two"\nupdate delete _acme-challenge.b.example.test TXT "old"\nsend\n',
      });
      const m = decodeMessage(u as Buffer);
      expect(m.flags.opcode).toBe(5);
      expect(m.authority.map((rr) => rr.class)).toEqual([CLASS.IN, CLASS.NONE]);
      const { ours } = resign(u as Buffer, key);
      expect(ours.toString('hex')).toBe((u as Buffer).toString('hex'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('signs the SOA query and the update nsupdate -y sends when it must find the zone', async () => {
    const key = newKey(algorithm);
    const zone = 'example.test';
    const msgs = await capture(['nsupdate', '-y', `${algorithm}:${key.name}:${key.secret.toString('base64')}`], 2, {
      stdin: 'server 127.0.0.1 PORT\nupdate add x.example.test 60 TXT "v"\nsend\n',
      // The SOA answer nsupdate needs, signed over its request with our code: nsupdate must accept it to go on.
      reply: (req) => soaAnswer(req, zone, key),
    });
    for (const msg of msgs) {
      const { ours } = resign(msg, key);
      expect(ours.toString('hex')).toBe(msg.toString('hex'));
    }
    expect(decodeMessage(msgs[1] as Buffer).flags.opcode).toBe(5);
  }, 20_000);
});

/** An authoritative SOA answer to `req`, signed (as a server signs) when the request was. */
function soaAnswer(req: Buffer, zone: string, key: TsigKey): Buffer {
  const q = decodeMessage(req);
  const tsig = q.additional.find((rr) => rr.type === TYPE.TSIG)?.data as TsigRdata | undefined;
  const plain = encodeMessage({
    id: q.id,
    flags: { ...q.flags, qr: true, aa: true, rcode: 0 },
    questions: q.questions,
    answers: [
      {
        name: zone,
        type: TYPE.SOA,
        class: CLASS.IN,
        ttl: 60,
        data: {
          mname: `ns.${zone}`,
          rname: `hostmaster.${zone}`,
          serial: 1,
          refresh: 60,
          retry: 60,
          expire: 600,
          minimum: 60,
        },
      },
    ],
    authority: [],
    additional: [],
  });
  if (!tsig) return plain;
  return signMessage(plain, key, { timeSigned: tsig.timeSigned, requestMac: tsig.mac }).signed;
}

describe('verifyResponse', () => {
  const key = newKey('hmac-sha256');
  const now = 1_800_000_000;
  const query = encodeMessage({
    id: 0x1234,
    flags: { qr: false, opcode: 0, aa: false, tc: false, rd: false, ra: false, rcode: 0 },
    questions: [{ name: 'a.example.test', type: TYPE.TXT, class: CLASS.IN }],
    answers: [],
    authority: [],
    additional: [],
  });
  const request = signMessage(query, key, { timeSigned: now });
  const answerPlain = encodeMessage({
    ...decodeMessage(query),
    flags: { qr: true, opcode: 0, aa: true, tc: false, rd: false, ra: false, rcode: 0 },
    answers: [{ name: 'a.example.test', type: TYPE.TXT, class: CLASS.IN, ttl: 60, data: [Buffer.from('token')] }],
  });
  const answer = signMessage(answerPlain, key, { timeSigned: now + 1, requestMac: request.mac }).signed;

  it('accepts the answer signed over the request MAC, within the fudge', () => {
    expect(verifyResponse(answer, request.mac, key, now)).toEqual({ ok: true });
    expect(verifyResponse(answer, request.mac, key, now + 301)).toEqual({ ok: true });
    expect(verifyResponse(answer, request.mac, key, now + 302).ok).toBe(false);
    expect(verifyResponse(answer, request.mac, key, now - 300).ok).toBe(false);
  });

  it('refuses every changed byte except the header id (the MAC covers the original id instead)', () => {
    for (let i = 2; i < answer.length; i++) {
      const bad = Buffer.from(answer);
      bad[i] = (bad[i] as number) ^ 0x01;
      let ok: boolean;
      try {
        ok = verifyResponse(bad, request.mac, key, now).ok;
      } catch (err) {
        expect((err as Error).name).toBe('DnsWireError');
        ok = false;
      }
      expect(ok, `byte ${i} changed`).toBe(false);
    }
  });

  it('refuses another request MAC, key name, algorithm or secret, and an unsigned answer', () => {
    expect(verifyResponse(answer, randomBytes(32), key, now)).toMatchObject({ ok: false, reason: /MAC/ });
    expect(verifyResponse(answer, request.mac, { ...key, secret: randomBytes(32) }, now).ok).toBe(false);
    expect(verifyResponse(answer, request.mac, { ...key, name: 'other.example' }, now)).toMatchObject({
      reason: /key name/,
    });
    expect(verifyResponse(answer, request.mac, { ...key, algorithm: 'hmac-sha512' }, now)).toMatchObject({
      reason: /algorithm/,
    });
    expect(verifyResponse(answerPlain, request.mac, key, now)).toMatchObject({ ok: false, reason: /not signed/ });
  });

  it.each([
    [16, 'BADSIG'],
    [17, 'BADKEY'],
    [18, 'BADTIME'],
  ])('reports the TSIG error %i as %s (the server could not verify the request)', (error, name) => {
    // BADSIG and BADKEY answers carry an empty MAC; BADTIME ones are signed.
    const tsig: TsigRdata = {
      algorithm: 'hmac-sha256',
      timeSigned: now,
      fudge: 300,
      mac: Buffer.alloc(0),
      originalId: 0x1234,
      error,
      other: Buffer.alloc(0),
    };
    const m = decodeMessage(answerPlain);
    const unsigned = encodeMessage({
      ...m,
      flags: { ...m.flags, rcode: 9 },
      additional: [{ name: key.name, type: TYPE.TSIG, class: CLASS.ANY, ttl: 0, data: tsig }],
    });
    expect(verifyResponse(unsigned, request.mac, key, now)).toMatchObject({ ok: false, tsigError: name });
  });
});

describe('parseTsigSecret', () => {
  const secret = randomBytes(32);
  const b64 = secret.toString('base64');

  it('reads a bare secret, a dnssec-keygen private file and a key clause', () => {
    expect(parseTsigSecret(`${b64}\n`).secret.equals(secret)).toBe(true);
    const priv = `Private-key-format: v1.3\nAlgorithm: 165 (HMAC_SHA512)\nKey: ${b64}\nBits: AAA=\n`;
    expect(parseTsigSecret(priv)).toEqual({ secret, algorithm: 'hmac-sha512' });
    const clause = `key "Acme.Example" {\n\talgorithm hmac-sha256;\n\tsecret "${b64}";\n};\n`;
    expect(parseTsigSecret(clause)).toEqual({ secret, name: 'acme.example', algorithm: 'hmac-sha256' });
  });

  it.each([
    ['empty', ''],
    ['not base64', 'not a key at all!'],
    ['two secrets', `${b64}\n${b64}`],
    ['a clause without secret', 'key "x" { algorithm hmac-sha256; };'],
  ])('refuses %s without repeating the content', (_what, text) => {
    let message = '';
    try {
      parseTsigSecret(text);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/TSIG key is neither/);
    if (text) expect(message).not.toContain(text);
  });
});
