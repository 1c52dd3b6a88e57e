/**
 * The exchange against a UDP/TCP server of this test that misbehaves on
 * purpose: answers with another id, another question, from another port, a
 * truncated answer that must be asked again over TCP, garbage, and an unsigned
 * answer to a signed query. Only the real answer may be taken.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsError, query } from '../../../agent/dns/client.js';
import { CLASS, decodeMessage, encodeMessage, TYPE, type Message } from '../../../agent/dns/wire.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function udpServer(onQuery: (q: Buffer, from: RemoteInfo, sock: Socket) => void): Promise<number> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  sock.on('message', (q, from) => onQuery(q, from, sock));
  cleanups.push(() => sock.close());
  return sock.address().port;
}

/** The answer to `q` with one A record (`address`), changed by `patch`. */
function answer(q: Buffer, address: string, patch: Partial<Message> = {}): Buffer {
  const m = decodeMessage(q);
  return encodeMessage({
    ...m,
    flags: { ...m.flags, qr: true, aa: true },
    answers: [{ name: m.questions[0]?.name ?? '', type: TYPE.A, class: CLASS.IN, ttl: 60, data: address }],
    ...patch,
  });
}

describe('exchange over UDP', () => {
  it('waits past answers with another id, another question, or from another port', async () => {
    const other = createSocket('udp4');
    await new Promise<void>((resolve) => other.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => other.close());
    const port = await udpServer((q, from, sock) => {
      const m = decodeMessage(q);
      sock.send(answer(q, '192.0.2.1', { id: (m.id + 1) & 0xffff }), from.port, from.address);
      sock.send(
        answer(q, '192.0.2.2', { questions: [{ name: 'other.test', type: TYPE.A, class: CLASS.IN }] }),
        from.port,
        from.address,
      );
      sock.send(answer(q, '192.0.2.3', { flags: { ...m.flags, qr: false } }), from.port, from.address);
      other.send(answer(q, '192.0.2.4'), from.port, from.address);
      sock.send(randomBytes(5), from.port, from.address);
      setTimeout(() => sock.send(answer(q, '192.0.2.5'), from.port, from.address), 50);
    });
    const a = await query({ host: '127.0.0.1', port }, 'a.example.test', 'A', { timeoutMs: 1000 });
    expect(a.answers.map((rr) => rr.data)).toEqual(['192.0.2.5']);
  });

  it('takes the question back case-insensitively, and a signed query only with a signed answer', async () => {
    const port = await udpServer((q, from, sock) => {
      const m = decodeMessage(q);
      const upper = m.questions.map((x) => ({ ...x, name: x.name.toUpperCase() }));
      sock.send(answer(q, '192.0.2.6', { questions: upper, additional: [] }), from.port, from.address);
    });
    const server = { host: '127.0.0.1', port };
    expect((await query(server, 'a.example.test', 'A')).answers[0]?.data).toBe('192.0.2.6');
    const key = { name: 'k', algorithm: 'hmac-sha256' as const, secret: randomBytes(32) };
    const err = await query(server, 'a.example.test', 'A', { tsig: key }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsError);
    expect(err).toMatchObject({ reason: 'tsig', rcode: undefined });
    expect((err as Error).message).toMatch(/not signed/);
  });

  it('a broken answer with the right id and question is malformed', async () => {
    const port = await udpServer((q, from, sock) => {
      const a = answer(q, '192.0.2.7');
      sock.send(Buffer.concat([a, Buffer.from([0xc0])]), from.port, from.address);
    });
    const err = await query({ host: '127.0.0.1', port }, 'a.example.test', 'A').catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'malformed', server: `127.0.0.1:${port}` });
  });
});

describe('over TCP after a truncated answer', () => {
  async function tcpServer(port: number, reply: (q: Buffer) => Buffer): Promise<Server> {
    const srv = createServer((conn) => {
      let buf = Buffer.alloc(0);
      conn.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const out = reply(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          conn.end(Buffer.concat([len, out]));
        }
      });
    });
    await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => srv.close());
    return srv;
  }

  it('asks again over TCP on the same port and takes that answer', async () => {
    const port = await udpServer((q, from, sock) => {
      const m = decodeMessage(q);
      sock.send(answer(q, '192.0.2.8', { flags: { ...m.flags, qr: true, tc: true } }), from.port, from.address);
    });
    const srv = await tcpServer(port, (q) => answer(q, '192.0.2.9'));
    expect((srv.address() as AddressInfo).port).toBe(port);
    const a = await query({ host: '127.0.0.1', port }, 'a.example.test', 'A');
    expect(a.answers.map((rr) => rr.data)).toEqual(['192.0.2.9']);
  });

  it('a TCP answer to another question is malformed', async () => {
    const port = await udpServer((q, from, sock) => {
      const m = decodeMessage(q);
      sock.send(answer(q, '192.0.2.8', { flags: { ...m.flags, qr: true, tc: true } }), from.port, from.address);
    });
    await tcpServer(port, (q) => answer(q, '192.0.2.9', { id: (decodeMessage(q).id + 1) & 0xffff }));
    const err = await query({ host: '127.0.0.1', port }, 'a.example.test', 'A').catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'malformed' });
    expect((err as Error).message).toMatch(/over TCP with a message that does not answer it/);
  });
});
