/**
 * What the http-01 self-check follows and what it repeats. It runs as root
 * inside the container, after the CA refused a challenge, and its finding
 * ends up in the error `status` shows: it must follow a redirect only where
 * the CA would (http or https, port 80 or 443, a name of this certificate),
 * and report status codes and sanitised locations, never what a server
 * answered in its body. Loopback servers stand in for port 80 and for an
 * internal service that must not be reached.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfCheckHttp01 } from '../../../agent/challenge/self-check.js';

const TOKEN = 'tokenABCDEFGHIJKLMNOP0123456789';
const SECRET = 'internal-secret-0f9e8d7c6b5a';
const challenge = {
  type: 'http-01',
  identifier: { type: 'ip' as const, value: '127.0.0.1' },
  token: TOKEN,
  keyAuthorization: `${TOKEN}.thumbprint`,
};

/** Where the "port 80" server sends the challenge path next; set by each test. */
interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}
let answer: (path: string) => Reply;
const seenByFront: string[] = [];
const seenByInternal: string[] = [];
let front: Server;
let internal: Server;
let frontPort: number;
let internalPort: number;

const listen = (s: Server | NetServer) =>
  new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

beforeAll(async () => {
  front = createServer((req, res) => {
    seenByFront.push(req.url ?? '');
    const a = answer(req.url ?? '');
    res.writeHead(a.status, a.headers).end(a.body ?? '');
  });
  internal = createServer((req, res) => {
    seenByInternal.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${SECRET}\n`);
  });
  frontPort = await listen(front);
  internalPort = await listen(internal);
});
afterAll(() => {
  front.close();
  internal.close();
});

function check(names = ['127.0.0.1']) {
  seenByFront.length = 0;
  seenByInternal.length = 0;
  return selfCheckHttp01(challenge, {
    mode: 'standalone',
    host: '127.0.0.1',
    port: 1,
    selfCheckPort: frontPort,
    names,
  });
}

describe('redirects the self-check follows', () => {
  it('not to an internal service on another port: reported, not fetched', async () => {
    answer = () => ({ status: 302, headers: { location: `http://127.0.0.1:${internalPort}/admin/keys` } });
    const finding = await check();
    expect(seenByInternal).toEqual([]);
    expect(finding).not.toContain(SECRET);
    expect(finding).toContain(`redirects to http://127.0.0.1:${internalPort}/admin/keys`);
    expect(finding).toMatch(/not followed: port \d+ is not 80 or 443/);
  });

  it('not to a host that is not a name of this certificate', async () => {
    answer = (path): Reply =>
      path.startsWith('/.well-known/')
        ? { status: 301, headers: { location: `http://localhost:${frontPort}/elsewhere` } }
        : { status: 200, body: SECRET };
    const finding = await check(['127.0.0.1']);
    expect(seenByFront).toEqual([`/.well-known/acme-challenge/${TOKEN}`]);
    expect(finding).toMatch(
      /redirects to http:\/\/localhost:\d+\/elsewhere .*not followed: localhost is not a name of this certificate/,
    );
  });

  it('to a name of this certificate: followed, and its answer told by status and size, never by content', async () => {
    answer = (path): Reply =>
      path.startsWith('/.well-known/')
        ? { status: 302, headers: { location: `/other/${TOKEN}` } }
        : { status: 200, headers: { 'content-type': 'text/plain' }, body: `${SECRET}\n` };
    const finding = await check(['localhost', '127.0.0.1']);
    expect(seenByFront).toEqual([`/.well-known/acme-challenge/${TOKEN}`, `/other/${TOKEN}`]);
    expect(finding).toContain(`redirects to http://127.0.0.1:${frontPort}/other/<token>, which answers 200`);
    expect(finding).not.toContain(SECRET);
    expect(finding).not.toContain(SECRET.slice(0, 8));
  });

  it('a first answer of 200 with other content: no content in the finding', async () => {
    answer = () => ({ status: 200, body: `${SECRET} and more` });
    const finding = await check();
    expect(finding).toMatch(/answers 200 with other content \(\d+ bytes\)/);
    expect(finding).not.toContain(SECRET.slice(0, 8));
  });
});

describe('a hostile Location', () => {
  let raw: NetServer;
  let rawPort: number;
  let location = '';
  beforeAll(async () => {
    // Raw HTTP, so the Location carries bytes an HTTP library would not send.
    raw = createNetServer((sock) => {
      sock.once('data', () => {
        sock.end(
          Buffer.concat([
            Buffer.from('HTTP/1.1 302 Found\r\nLocation: ', 'latin1'),
            Buffer.from(location, 'latin1'),
            Buffer.from('\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1'),
          ]),
        );
      });
    });
    rawPort = await listen(raw);
  });
  afterAll(() => raw.close());

  const rawCheck = () =>
    selfCheckHttp01(challenge, {
      mode: 'standalone',
      host: '127.0.0.1',
      port: 1,
      selfCheckPort: rawPort,
      names: ['127.0.0.1'],
    });

  it('is shown without control characters and cut to a bounded length', async () => {
    // C1 CSI (0x9b) sequences and an overlong path, to a host the check must not follow.
    location = `gopher://x\x9b2J\x9b31mred/${'A'.repeat(6000)}`;
    const finding = (await rawCheck()) ?? '';
    expect(finding).toMatch(/redirects to /);
    expect(finding).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(finding.length).toBeLessThan(1000);
  });

  it('an overlong followable Location is cut too', async () => {
    location = `http://203.0.113.9/${'B'.repeat(6000)}`;
    const finding = (await rawCheck()) ?? '';
    expect(finding).toMatch(/not followed: 203\.0\.113\.9 is not a name of this certificate/);
    expect(finding.length).toBeLessThan(1000);
  });
});
