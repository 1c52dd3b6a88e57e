/**
 * step-ca's renewal API client (agent/stepca/api.ts) against an HTTPS server
 * in the test process that asks for a client certificate, as step-ca does:
 * what it sends (the live certificate as the TLS client certificate, a CSR
 * for the new key with the names, read back by @peculiar/x509 as the
 * oracle), and how each kind of failure comes out: the CA's certificate not
 * pinned (TrustError), no CA (CaUnavailableError), and every way of
 * refusing (RenewalRefusedError: an HTTP error with step-ca's JSON, a 404, a
 * TLS alert against the client certificate, an answer that is no chain).
 * The real step-ca answers the same requests in the integration tests.
 */
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CaUnavailableError, RenewalRefusedError, TrustError } from '../../../agent/lib/errors.js';
import { rekey, renew } from '../../../agent/stepca/api.js';
import { makeCa, newKey, type Leaf, type TestCa } from '../../helpers/certs.js';

const DOMAINS = ['app.internal', '10.0.0.5'];
let ca: TestCa;
let other: TestCa;
let serverLeaf: Leaf;
let client: Leaf;
let server: Server | undefined;

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void | Promise<void>;

/** An HTTPS server on loopback with a certificate of `issuer`; it asks for a client certificate, verified against `clientCa` when given. */
async function serve(
  handler: Handler,
  opts: { issuer?: TestCa; clientCa?: TestCa; maxVersion?: 'TLSv1.2' } = {},
): Promise<string> {
  const cert = opts.issuer ? await opts.issuer.leaf({ domains: ['localhost', '127.0.0.1'] }) : serverLeaf;
  server = createServer(
    {
      key: cert.keyPem,
      cert: cert.fullchainPem,
      requestCert: true,
      rejectUnauthorized: Boolean(opts.clientCa),
      ...(opts.clientCa ? { ca: [opts.clientCa.root.pem] } : {}),
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void handler(req, Buffer.concat(chunks).toString('utf8'), res));
    },
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const request = (caUrl: string, newKeyPem: string) => ({
  caUrl,
  roots: [ca.root.pem],
  client: { certPem: client.fullchainPem, keyPem: client.keyPem },
  newKeyPem,
  domains: DOMAINS,
  timeoutMs: 5000,
});

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

beforeAll(async () => {
  ca = await makeCa('Pinned');
  other = await makeCa('Other');
  serverLeaf = await ca.leaf({ domains: ['localhost', '127.0.0.1'] });
  client = await ca.leaf({ domains: DOMAINS, usages: 'server+client' });
});

afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

describe('rekey', () => {
  it('presents the live certificate, sends a CSR for the new key with the names, and returns the chain', async () => {
    const seen: { path?: string; clientSerial?: string; csr?: x509.Pkcs10CertificateRequest } = {};
    const url = await serve(async (req, body, res) => {
      seen.path = req.url;
      seen.clientSerial = (req.socket as TLSSocket).getPeerCertificate().serialNumber?.toLowerCase();
      const csr = new x509.Pkcs10CertificateRequest((JSON.parse(body) as { csr: string }).csr);
      seen.csr = csr;
      const issued = await ca.leaf({
        domains: DOMAINS,
        publicKey: await csr.publicKey.export(),
        usages: 'server+client',
      });
      json(res, 201, { crt: issued.pem, ca: ca.intermediate.pem, certChain: [issued.pem, ca.intermediate.pem] });
    });
    const key = await newKey();
    const answer = await rekey(request(url, key.pem));
    expect(seen.path).toBe('/1.0/rekey');
    expect(seen.clientSerial).toBe(client.serial);
    expect(await seen.csr!.verify()).toBe(true);
    const san = seen.csr!.extensions.find((e) => e.type === '2.5.29.17')!;
    expect(new x509.SubjectAlternativeNameExtension(san.rawData).names.items.map((n) => n.value)).toEqual(DOMAINS);
    const [leaf, intermediate] = answer.fullchainPem.match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g,
    )!;
    expect(new X509Certificate(leaf!).checkPrivateKey((await import('node:crypto')).createPrivateKey(key.pem))).toBe(
      true,
    );
    expect(intermediate).toBe(ca.intermediate.pem);
  });

  it('takes crt and ca when there is no certChain', async () => {
    const url = await serve((_req, _body, res) => json(res, 201, { crt: client.pem, ca: ca.intermediate.pem }));
    const answer = await renew({ ...request(url, ''), client: { certPem: client.pem, keyPem: client.keyPem } });
    expect(answer.fullchainPem).toBe(client.pem + ca.intermediate.pem);
  });

  const refusals: [string, Handler, RegExp][] = [
    [
      "a 401 with step-ca's JSON, quoted",
      (_q, _b, res) =>
        json(res, 401, { status: 401, message: 'The request lacked necessary authorization\u0007 to be completed.' }),
      /HTTP 401: The request lacked necessary authorization to be completed\./,
    ],
    [
      'a 404 (not a step-ca)',
      (_q, _b, res) => json(res, 404, 'not found'),
      /HTTP 404 \(the CA has no such API: not a step-ca\?\)/,
    ],
    ['a 500', (_q, _b, res) => json(res, 500, { status: 500, message: 'internal' }), /HTTP 500: internal/],
    ['garbage', (_q, _b, res) => json(res, 201, '<html>hello</html>'), /holds no certificate chain/],
    [
      'JSON without a certificate',
      (_q, _b, res) => json(res, 201, { crt: 'nope', ca: 42 }),
      /holds no certificate chain/,
    ],
    ['an empty chain', (_q, _b, res) => json(res, 201, { certChain: [] }), /holds no certificate chain/],
    ['an answer too large', (_q, _b, res) => json(res, 201, 'x'.repeat(300 * 1024)), /more than 262144 bytes/],
  ];

  it.each(refusals)('%s: RenewalRefusedError', async (_what, handler, message) => {
    const url = await serve(handler);
    const err = await rekey(request(url, (await newKey()).pem)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RenewalRefusedError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toMatch(/[\u0000-\u001f]/);
  });

  it('a TLS alert against the client certificate (the CA does not accept it): RenewalRefusedError', async () => {
    const url = await serve((_q, _b, res) => json(res, 201, {}), { clientCa: other });
    const err = await rekey(request(url, (await newKey()).pem)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RenewalRefusedError);
  });

  it('a server that speaks no TLS 1.3: refused before the client certificate goes out in the clear', async () => {
    let peer: string | undefined;
    const url = await serve(
      (req, _b, res) => {
        peer = (req.socket as TLSSocket).getPeerCertificate().serialNumber;
        json(res, 201, {});
      },
      { maxVersion: 'TLSv1.2' },
    );
    const err = await rekey(request(url, (await newKey()).pem)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RenewalRefusedError);
    expect((err as Error).message).toMatch(/TLS handshake for \/1\.0\/rekey failed \(.*protocol version/);
    expect(peer).toBeUndefined();
  });

  it('a CA whose certificate does not chain to the pin: TrustError, nothing sent', async () => {
    let asked = false;
    const url = await serve(
      (_q, _b, res) => {
        asked = true;
        json(res, 201, {});
      },
      { issuer: other },
    );
    const err = await rekey(request(url, (await newKey()).pem)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrustError);
    expect(asked).toBe(false);
  });

  it('no CA listening: CaUnavailableError', async () => {
    const url = await serve(() => undefined);
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    const err = await rekey(request(url, (await newKey()).pem)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CaUnavailableError);
  });

  it('a CA that accepts the connection and never answers: CaUnavailableError after the timeout', async () => {
    const sockets: Socket[] = [];
    const url = await serve(() => undefined);
    server!.on('secureConnection', (s: Socket) => sockets.push(s));
    const err = await rekey({ ...request(url, (await newKey()).pem), timeoutMs: 300 }).catch((e: unknown) => e);
    for (const s of sockets) s.destroy();
    expect(err).toBeInstanceOf(CaUnavailableError);
  });
});
