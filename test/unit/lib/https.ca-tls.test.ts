/**
 * Connections to the CA are OpenSSL's decision: the pinned roots are its only
 * CA store, `rejectUnauthorized` is on, the host name is Node's default
 * check, and the agent adds no verdict of its own. Real TLS servers on
 * loopback with chains minted by openssl, reached the two ways the agent
 * talks to a CA (httpsGet for /roots, the ACME transport): a good chain works
 * and one connection carries several requests; OpenSSL's refusals (another
 * root, a wrong name, a leaf whose Netscape certificate type says "client
 * only", a name outside a sub-CA's constraints, a SHA-1 signature, a notBefore
 * that is no time) come out as TrustError (exit 65) naming OpenSSL's code,
 * and a server that never finishes the handshake as CaUnavailableError
 * (exit 69).
 */
import { X509Certificate, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeTransport } from '../../../agent/acme/transport.js';
import { CaUnavailableError, TrustError } from '../../../agent/lib/errors.js';
import { httpsGet } from '../../../agent/lib/https.js';
import { makeCert, type Made } from '../../harness/pki.js';

let dir: string;
const make = (cn: string, ext: string[], issuer?: Made, opts?: Parameters<typeof makeCert>[4]) =>
  makeCert(dir, cn, ext, issuer, opts);

const CA = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign'];
const LEAF = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = serverAuth',
];
const SAN = 'subjectAltName = DNS:localhost, IP:127.0.0.1';

const servers: (Server | TcpServer)[] = [];
const accountKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
  type: 'pkcs8',
  format: 'pem',
}) as string;

interface Served {
  port: number;
  /** TLS connections the server completed. */
  readonly handshakes: number;
}

/** An HTTPS server on 127.0.0.1 presenting leaf + chain; answers an ACME directory to every request. */
async function serve(leaf: Made, chain: Made[], ciphers?: string): Promise<Served> {
  let handshakes = 0;
  const server = createHttpsServer(
    { cert: leaf.pem + chain.map((c) => c.pem).join(''), key: readFileSync(leaf.key), ...(ciphers ? { ciphers } : {}) },
    (req, res) => {
      const base = `https://${req.headers.host}`;
      res
        .writeHead(200, { 'content-type': 'application/json', 'replay-nonce': `nonce-${handshakes}` })
        .end(JSON.stringify({ newNonce: `${base}/n`, newAccount: `${base}/a`, newOrder: `${base}/o` }));
    },
  );
  server.on('secureConnection', () => handshakes++);
  server.on('tlsClientError', () => undefined);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    get handshakes() {
      return handshakes;
    },
  };
}

const get = (port: number, host = '127.0.0.1', timeoutMs = 5000) =>
  httpsGet(`https://${host}:${port}/roots`, { trust: { roots: [root.pem] }, timeoutMs });

/** The ACME transport's view of the same server: its directory, over the transport's own connection. */
async function acmeDirectory(port: number, host = '127.0.0.1'): Promise<unknown> {
  const transport = new AcmeTransport(`https://${host}:${port}/directory`, [root.pem], accountKey);
  try {
    return await transport.directory();
  } finally {
    transport.close();
  }
}

/** What the operator is told when OpenSSL refuses: exit 65, OpenSSL's code in the line. */
async function expectRefused(attempt: Promise<unknown>, code: string | RegExp): Promise<void> {
  const err = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TrustError);
  expect((err as TrustError).exitCode).toBe(65);
  expect((err as Error).message).toMatch(/does not verify against the pinned CA root/);
  expect((err as Error).message).toMatch(typeof code === 'string' ? `(${code}: ` : code);
}

/** DER header at `pos`: where the contents start and end. */
function tlv(buf: Buffer, pos: number): { start: number; end: number } {
  let len = buf[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = buf.readUIntBE(start, n);
    start += n;
  }
  return { start, end: start + len };
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(n);
  const trimmed = bytes.subarray(bytes.findIndex((b) => b !== 0));
  return Buffer.concat([Buffer.from([0x80 | trimmed.length]), trimmed]);
}

/** `cert` with its notBefore (a UTCTime) replaced by `notBefore` and signed again by `issuer` (openssl will not). */
async function resigned(cert: Made, issuer: Made, notBefore: string): Promise<Made> {
  const der = new X509Certificate(cert.pem).raw;
  const outer = tlv(der, 0);
  const tbsEnd = tlv(der, outer.start).end;
  const tbs = Buffer.from(der.subarray(outer.start, tbsEnd));
  const at = tbs.indexOf(Buffer.from([0x17, 0x0d]));
  tbs.write(notBefore, at + 2, 'latin1');
  const algorithm = der.subarray(tbsEnd, tlv(der, tbsEnd).end);
  const signature = sign('sha256', tbs, createPrivateKey(readFileSync(issuer.key)));
  const bits = Buffer.concat([Buffer.from([0x03]), derLength(signature.length + 1), Buffer.from([0]), signature]);
  const body = Buffer.concat([tbs, algorithm, bits]);
  const out = Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
  const pem = `-----BEGIN CERTIFICATE-----\n${out.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
  return { ...cert, pem };
}

let root: Made;
let int: Made;
let good: Made;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-ca-tls-'));
  root = await make('Pinned Root', CA);
  int = await make('Pinned Intermediate', CA, root);
  good = await make('localhost', [...LEAF, SAN], int);
});
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS to the CA: OpenSSL decides, with the pinned roots', () => {
  it('accepts a chain to the pinned root, by IP and by name; the ACME transport keeps its connection', async () => {
    const server = await serve(good, [int]);
    expect((await get(server.port)).status).toBe(200);
    expect((await get(server.port, 'localhost')).status).toBe(200);
    // The directory and a signed POST with the nonce it carried, over one connection.
    const transport = new AcmeTransport(`https://127.0.0.1:${server.port}/directory`, [root.pem], accountKey);
    try {
      const { newAccount } = await transport.directory();
      expect((await transport.post(newAccount, {})).status).toBe(200);
    } finally {
      transport.close();
    }
    expect(server.handshakes).toBe(3);
  });

  it('refuses a leaf whose Netscape certificate type is "client" only (INVALID_PURPOSE), on both paths', async () => {
    // A chain to the pinned root, the right names, serverAuth in the EKU: only OpenSSL's
    // purpose check (nsCertType) refuses it. The agent's own chain check once accepted it.
    const clientOnly = await make('localhost', [...LEAF, SAN, 'nsCertType = client'], int);
    const server = await serve(clientOnly, [int]);
    await expectRefused(get(server.port), 'INVALID_PURPOSE');
    await expectRefused(acmeDirectory(server.port), 'INVALID_PURPOSE');
  });

  it('accepts what OpenSSL accepts although the agent’s installed-set check does not know it', async () => {
    const netscape = await make('localhost', [...LEAF, SAN, 'nsCertType = critical, server'], int);
    const server = await serve(netscape, [int]);
    expect((await get(server.port)).status).toBe(200);
    expect(await acmeDirectory(server.port)).toMatchObject({ newOrder: expect.stringMatching(/\/o$/) });
  });

  it('refuses a server whose chain leads to another root, even when it sends that root along', async () => {
    const otherRoot = await make('Other Root', CA);
    const otherInt = await make('Other Intermediate', CA, otherRoot);
    const impostor = await make('localhost', [...LEAF, SAN], otherInt);
    const port = (await serve(impostor, [otherInt])).port;
    await expectRefused(get(port), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    await expectRefused(acmeDirectory(port), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    const withRoot = (await serve(impostor, [otherInt, otherRoot])).port;
    await expectRefused(get(withRoot), 'SELF_SIGNED_CERT_IN_CHAIN');
  });

  it('refuses a pinned chain for another name', async () => {
    const elsewhere = await make('elsewhere', [...LEAF, 'subjectAltName = DNS:elsewhere.test'], int);
    const port = (await serve(elsewhere, [int])).port;
    await expectRefused(get(port, 'localhost'), 'ERR_TLS_CERT_ALTNAME_INVALID');
    await expectRefused(acmeDirectory(port, 'localhost'), 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('matches a leaf that names its host only in the CN as Node does', async () => {
    const cnOnly = await make('localhost', LEAF, int);
    const port = (await serve(cnOnly, [int])).port;
    expect((await get(port, 'localhost')).status).toBe(200);
  });

  it('refuses a name outside a pinned sub-CA’s constraints hidden in a multi-valued CN', async () => {
    const team = await make('Team CA', [...CA, 'nameConstraints = critical, permitted;DNS:.team.test'], root);
    const outside = await make('ca.test', LEAF, team, { subject: '/CN=ca.test+OU=elsewhere' });
    const port = (await serve(outside, [team])).port;
    const refused = httpsGet(`https://127.0.0.1:${port}/roots`, { trust: { roots: [root.pem] } });
    // Reached by IP, named ca.test only through SNI: the host check or the name constraint refuses it.
    await expectRefused(refused, /\((ERR_TLS_CERT_ALTNAME_INVALID|UNSPECIFIED|PERMITTED_VIOLATION)[^)]*: /);
  });

  it('refuses a SHA-1 signature from a pinned CA, reported as a trust error (UNSPECIFIED), not as unreachable', async () => {
    const weak = await make('localhost', [...LEAF, SAN], int, { digest: 'sha1' });
    // The server must be told to present it at all (its own OpenSSL refuses SHA-1 too).
    const port = (await serve(weak, [int], 'DEFAULT@SECLEVEL=0')).port;
    await expectRefused(get(port), /\(UNSPECIFIED: CA signature digest/);
  });

  it('refuses a leaf whose notBefore is no time at all as a trust error, not as unreachable', async () => {
    const broken = await resigned(await make('localhost', [...LEAF, SAN], int), int, '251399000000Z');
    const port = (await serve(broken, [int])).port;
    await expectRefused(get(port), 'ERROR_IN_CERT_NOT_BEFORE_FIELD');
    await expectRefused(acmeDirectory(port), 'ERROR_IN_CERT_NOT_BEFORE_FIELD');
  });

  it('gives up on a server that never finishes the handshake, as unreachable (69), within the timeout', async () => {
    const silent = createTcpServer(() => undefined);
    servers.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    const err = await get(port, '127.0.0.1', 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CaUnavailableError);
    expect((err as CaUnavailableError).exitCode).toBe(69);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
