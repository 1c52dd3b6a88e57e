/**
 * One bounded request/answer exchange with a DNS server: over UDP from a
 * socket connected to the server (the kernel then drops datagrams from any
 * other address or port), answers that do not carry the request's id and
 * question are ignored as spoofing or stale, every try has a deadline, and a
 * truncated answer (TC) is asked again over TCP. The caller sets the id (a
 * TSIG signature covers it), see randomId().
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIP, isIPv6 } from 'node:net';
import { DnsError, serverText, type DnsServer } from './errors.js';
import { decodeHead, sameName, type Question } from './wire.js';

export interface ExchangeOptions {
  /** Straight to TCP. */
  tcp?: boolean;
  /** Per try; default 3000. */
  timeoutMs?: number;
  /** UDP tries; default 2. */
  tries?: number;
  /** For messages: "the query of a.example SOA". */
  what?: string;
}

const MAX_TCP_MESSAGE = 65_535;

export function randomId(): number {
  return randomInt(0, 0x10000);
}

function sameQuestions(a: Question[], b: Question[]): boolean {
  return (
    a.length === b.length &&
    a.every((q, i) => {
      const o = b[i] as Question;
      return sameName(q.name, o.name) && q.type === o.type && q.class === o.class;
    })
  );
}

/** Whether `resp` answers `req`: QR set, same id and opcode, same question (a refusal may omit it). */
export function answers(req: Buffer, resp: Buffer): boolean {
  try {
    const q = decodeHead(req);
    const a = decodeHead(resp);
    if (!a.flags.qr || a.id !== q.id || a.flags.opcode !== q.flags.opcode) return false;
    return sameQuestions(q.questions, a.questions) || (a.questions.length === 0 && a.flags.rcode !== 0);
  } catch {
    return false;
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function unreachable(server: DnsServer, what: string, err: NodeJS.ErrnoException, proto: string): DnsError {
  const code = err.code ?? 'error';
  const why = code === 'ECONNREFUSED' ? 'nothing listens there' : code;
  return new DnsError(
    server,
    'unreachable',
    `DNS server ${serverText(server)} could not be reached for ${what} over ${proto} (${why})`,
    {
      cause: err,
    },
  );
}

function udpExchange(server: DnsServer, msg: Buffer, timeoutMs: number, tries: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(server.host) ? 'udp6' : 'udp4');
    let timer: NodeJS.Timeout | undefined;
    let sent = 0;
    const finish = (err: Error | undefined, answer?: Buffer): void => {
      clearTimeout(timer);
      socket.removeAllListeners('message');
      socket.on('error', () => undefined);
      socket.close();
      if (err) reject(err);
      else resolve(answer as Buffer);
    };
    const send = (): void => {
      if (sent >= tries) {
        const message = `DNS server ${serverText(server)} did not answer ${what} within ${seconds(timeoutMs)} (UDP, ${tries} ${tries === 1 ? 'try' : 'tries'})`;
        finish(new DnsError(server, 'timeout', message));
        return;
      }
      sent += 1;
      socket.send(msg);
      timer = setTimeout(send, timeoutMs);
    };
    socket.on('message', (resp) => {
      if (answers(msg, resp)) finish(undefined, resp);
    });
    socket.on('error', (err) => finish(unreachable(server, what, err, 'UDP')));
    // A connect that fails (a link-local address without its scope, no route) comes to this callback, not 'error'.
    socket.connect(server.port, server.host, (err?: Error) =>
      err ? finish(unreachable(server, what, err as NodeJS.ErrnoException, 'UDP')) : send(),
    );
  });
}

function tcpExchange(server: DnsServer, msg: Buffer, timeoutMs: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port });
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const finish = (err: Error | undefined, answer?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(answer as Buffer);
    };
    const timer = setTimeout(() => {
      const message = `DNS server ${serverText(server)} did not answer ${what} within ${seconds(timeoutMs)} (TCP)`;
      finish(new DnsError(server, 'timeout', message));
    }, timeoutMs);
    const malformed = (why: string): void =>
      finish(
        new DnsError(server, 'malformed', `DNS server ${serverText(server)} answered ${what} over TCP with ${why}`),
      );
    socket.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      socket.write(Buffer.concat([len, msg]));
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received > 2 + MAX_TCP_MESSAGE) return malformed('more than one message');
      const all = Buffer.concat(chunks);
      if (all.length < 2) return;
      const len = all.readUInt16BE(0);
      if (all.length < 2 + len) return;
      const resp = all.subarray(2, 2 + len);
      if (answers(msg, resp)) finish(undefined, resp);
      else malformed('a message that does not answer it');
    });
    socket.on('error', (err) => finish(unreachable(server, what, err, 'TCP')));
    socket.on('close', () => malformed('no complete message (the connection was closed)'));
  });
}

/**
 * The answer to `msg` (whose id and question it must match) from `server`,
 * over UDP unless `tcp`, and over TCP when the UDP answer is truncated.
 * DnsError: timeout, unreachable, or malformed (TCP only: over UDP an answer
 * that does not match is not the server's and is waited past).
 */
export async function exchange(server: DnsServer, msg: Buffer, opts: ExchangeOptions = {}): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const what = opts.what ?? 'the query';
  if (!isIP(server.host)) {
    throw new DnsError(
      server,
      'unreachable',
      `DNS server ${serverText(server)} is not an IP address; give the server's address`,
    );
  }
  if (opts.tcp) return tcpExchange(server, msg, timeoutMs, what);
  const answer = await udpExchange(server, msg, timeoutMs, opts.tries ?? 2, what);
  if (decodeHead(answer).flags.tc) return tcpExchange(server, msg, timeoutMs, what);
  return answer;
}
