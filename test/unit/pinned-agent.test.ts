/**
 * PinnedAgent: HTTPS to the CA with the pinned roots as the only anchors,
 * the chain held to them by the agent's own check, and anything that check
 * does not accept handed to OpenSSL with the pinned roots. Real TLS servers
 * on loopback with chains minted by openssl: a good chain is accepted
 * without OpenSSL (and one connection carries several requests); another
 * root, a wrong name and a server that never finishes the handshake are
 * refused with OpenSSL's error codes or a timeout; a chain OpenSSL accepts
 * that the agent's check does not (a critical Netscape certificate type)
 * still works, through OpenSSL.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, request, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustError } from '../../agent/lib/errors.js';
import { httpsGet } from '../../agent/lib/https.js';
import { PinnedAgent } from '../../agent/lib/pinned-agent.js';
import { makeCert, type Made } from '../helpers/openssl-certs.js';

let dir: string;
const make = (cn: string, ext: string[], issuer?: Made, opts?: Parameters<typeof makeCert>[4]) =>
  makeCert(dir, cn, ext, issuer, opts);

const CA = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign'];
const LEAF = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = serverAuth',
];

const servers: (Server | TcpServer)[] = [];

/** An HTTPS server on 127.0.0.1 presenting leaf + chain; answers every request with "ok <n>". */
async function serve(leaf: Made, chain: Made[], ciphers?: string): Promise<number> {
  let count = 0;
  const server = createHttpsServer(
    { cert: leaf.pem + chain.map((c) => c.pem).join(''), key: readFileSync(leaf.key), ...(ciphers ? { ciphers } : {}) },
    (_req, res) => res.end(`ok ${++count}`),
  );
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

function get(agent: PinnedAgent, port: number, host = '127.0.0.1', timeout = 5000, servername?: string) {
  return new Promise<string>((resolve, reject) => {
    const req = request({ host, port, path: '/', agent, timeout, ...(servername ? { servername } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

let root: Made;
let int: Made;
let good: Made;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-pinned-'));
  root = await make('Pinned Root', CA);
  int = await make('Pinned Intermediate', CA, root);
  good = await make('localhost', [...LEAF, 'subjectAltName = DNS:localhost, IP:127.0.0.1'], int);
});
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('PinnedAgent', () => {
  it('accepts a chain to the pinned root itself, by IP and by name, and keeps the connection', async () => {
    const port = await serve(good, [int]);
    const agent = new PinnedAgent([root.pem], { keepAlive: true, maxSockets: 1 });
    try {
      expect(await get(agent, port)).toBe('ok 1');
      expect(await get(agent, port)).toBe('ok 2');
      expect(agent.verified).toEqual({ pinned: 1, openssl: 0 });
      expect(await get(new PinnedAgent([root.pem]), port, 'localhost')).toBe('ok 3');
    } finally {
      agent.destroy();
    }
  });

  it('refuses a server whose chain leads to another root, with OpenSSL’s verdict', async () => {
    const otherRoot = await make('Other Root', CA);
    const otherInt = await make('Other Intermediate', CA, otherRoot);
    const impostor = await make('localhost', [...LEAF, 'subjectAltName = DNS:localhost, IP:127.0.0.1'], otherInt);
    const port = await serve(impostor, [otherInt]);
    const agent = new PinnedAgent([root.pem]);
    await expect(get(agent, port)).rejects.toMatchObject({ code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
    expect(agent.verified).toEqual({ pinned: 0, openssl: 1 });
    // Sending the other root along does not make it an anchor.
    const withRoot = await serve(impostor, [otherInt, otherRoot]);
    await expect(get(new PinnedAgent([root.pem]), withRoot)).rejects.toMatchObject({
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
  });

  it('refuses a pinned chain for another name', async () => {
    const elsewhere = await make('elsewhere', [...LEAF, 'subjectAltName = DNS:elsewhere.test'], int);
    const port = await serve(elsewhere, [int]);
    const agent = new PinnedAgent([root.pem]);
    await expect(get(agent, port, 'localhost')).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(agent.verified).toEqual({ pinned: 0, openssl: 1 });
  });

  it('leaves a chain its own check does not accept to OpenSSL, which may accept it', async () => {
    // nsCertType is not among the extensions the agent's check understands; OpenSSL knows it.
    const netscape = await make(
      'localhost',
      [...LEAF, 'nsCertType = critical, server', 'subjectAltName = IP:127.0.0.1'],
      int,
    );
    const port = await serve(netscape, [int]);
    const agent = new PinnedAgent([root.pem]);
    expect(await get(agent, port)).toBe('ok 1');
    expect(agent.verified).toEqual({ pinned: 0, openssl: 1 });
  });

  it('leaves a leaf that names its host only in the CN to OpenSSL', async () => {
    const cnOnly = await make('localhost', LEAF, int);
    const port = await serve(cnOnly, [int]);
    const agent = new PinnedAgent([root.pem]);
    expect(await get(agent, port, 'localhost')).toBe('ok 1');
    expect(agent.verified).toEqual({ pinned: 0, openssl: 1 });
  });

  it('refuses a name outside a pinned sub-CA’s constraints hidden in a multi-valued CN', async () => {
    // Accepted by the agent's own check before it left CN-only leaves to OpenSSL.
    const team = await make('Team CA', [...CA, 'nameConstraints = critical, permitted;DNS:.team.test'], root);
    const outside = await make('ca.test', LEAF, team, { subject: '/CN=ca.test+OU=elsewhere' });
    const port = await serve(outside, [team]);
    const agent = new PinnedAgent([root.pem]);
    await expect(get(agent, port, '127.0.0.1', 5000, 'ca.test')).rejects.toThrow();
    expect(agent.verified).toEqual({ pinned: 0, openssl: 1 });
  });

  it('refuses a SHA-1 signature from a pinned CA, as OpenSSL does', async () => {
    // Accepted by the agent's own check before it held keys and signatures to an allow-list.
    const weak = await make('localhost', [...LEAF, 'subjectAltName = DNS:localhost, IP:127.0.0.1'], int, {
      digest: 'sha1',
    });
    // The server must be told to present it at all (its own OpenSSL refuses SHA-1 too).
    const port = await serve(weak, [int], 'DEFAULT@SECLEVEL=0');
    const agent = new PinnedAgent([root.pem]);
    await expect(get(agent, port)).rejects.toThrow();
    expect(agent.verified).toEqual({ pinned: 0, openssl: 1 });
    // What the operator is told: the CA does not verify against the pin (exit 65), not "cannot reach" (69).
    const refused = await httpsGet(`https://127.0.0.1:${port}/`, { trust: { roots: [root.pem] } }).catch((e) => e);
    expect(refused).toBeInstanceOf(TrustError);
    expect(refused.message).toMatch(/does not verify against the pinned CA root \(UNSPECIFIED: CA signature digest/);
  });

  it('gives up on a server that never finishes the handshake, within the request timeout', async () => {
    const silent = createTcpServer(() => undefined);
    servers.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    await expect(get(new PinnedAgent([root.pem]), port, '127.0.0.1', 300)).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
