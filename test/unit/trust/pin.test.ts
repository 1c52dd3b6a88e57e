/**
 * Pinning at first contact against a loopback HTTPS server that answers
 * /roots as step-ca does: the pinned root is kept only when the CA's own TLS
 * chains to it (a server that repeats the real /roots over another CA's
 * certificate is refused); a mismatch names what was offered; answers that
 * are not a roots list are protocol errors. And the root file for CAs
 * without /roots.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaProtocolError, ConfigError, TrustError } from '../../../agent/lib/errors.js';
import { bootstrapTrust, fetchRoots, trustFromRootFile } from '../../../agent/trust/pin.js';
import { tempDir } from '../../helpers/agent.js';
import { makeCa, type TestCa } from '../../helpers/certs.js';

const NOW = new Date('2026-01-02T03:04:05Z');
let ca: TestCa;
let other: TestCa;
let dir: string;
const servers: Server[] = [];

/** A CA answering /roots with `body` (status 201), its TLS certificate issued by `tlsCa`. */
async function rootsServer(tlsCa: TestCa, answer: { status?: number; body: string }): Promise<string> {
  const tls = await tlsCa.leaf({ domains: ['127.0.0.1'] });
  const server = createServer({ key: tls.keyPem, cert: tls.fullchainPem }, (req, res) => {
    res.writeHead(req.url === '/roots' ? (answer.status ?? 201) : 404, { 'content-type': 'application/json' });
    res.end(answer.body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
const rootsOf = (...cas: TestCa[]) => JSON.stringify({ crts: cas.map((c) => c.root.pem) });
const error = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('resolved'),
    (e: unknown) => e as Error,
  );

beforeAll(async () => {
  [ca, other] = await Promise.all([makeCa('Pinned'), makeCa('Other')]);
  dir = tempDir('cert-agent-pin-');
});
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('bootstrapTrust', () => {
  it('keeps the served root that matches the pin, and only it', async () => {
    const url = await rootsServer(ca, { body: rootsOf(other, ca) });
    const bundle = await bootstrapTrust(url, [ca.fingerprint], NOW);
    expect(bundle).toEqual({
      pins: [ca.fingerprint],
      roots: [{ fingerprint: ca.fingerprint, pem: expect.stringContaining('BEGIN CERTIFICATE') as string }],
      bootstrappedAt: NOW.toISOString(),
    });
  });

  it('a mismatch names the pin and every fingerprint offered, and trusts nothing', async () => {
    const url = await rootsServer(ca, { body: rootsOf(ca, other) });
    const err = await error(bootstrapTrust(url, ['ab'.repeat(32)], NOW));
    expect(err).toBeInstanceOf(TrustError);
    expect(err.message).toBe(
      `fingerprint mismatch: expected ${'ab'.repeat(32)}, the CA at ${url} offered ${ca.fingerprint}, ${other.fingerprint}; nothing was trusted`,
    );
  });

  it('refuses a server that repeats the pinned /roots over another CA’s TLS certificate', async () => {
    const url = await rootsServer(other, { body: rootsOf(ca) });
    const err = await error(bootstrapTrust(url, [ca.fingerprint], NOW));
    expect(err).toBeInstanceOf(TrustError);
    expect(err.message).toMatch(/does not verify against the pinned CA root/);
  });
});

describe('fetchRoots: answers that are not a roots list', () => {
  const cases: [string, { status?: number; body: string }, RegExp][] = [
    [
      'an HTTP error',
      { status: 404, body: '{}' },
      /\/roots answered HTTP 404; expected 201 .* \(is this a step-ca\?\)$/,
    ],
    ['not JSON', { body: '<html>' }, /\/roots did not answer JSON; expected \{"crts": \[PEM, \.\.\.\]\}$/],
    ['no crts list', { body: '{"crts": []}' }, /\/roots answered without a "crts" list of PEM certificates$/],
    [
      'a certificate that does not parse',
      { body: '{"crts": ["-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n"]}' },
      /\/roots answered a certificate that does not parse: /,
    ],
  ];
  it.each(cases)('%s is a protocol error naming the URL', async (_name, answer, message) => {
    const url = await rootsServer(ca, answer);
    const err = await error(fetchRoots(url, { roots: [ca.root.pem] }));
    expect(err).toBeInstanceOf(CaProtocolError);
    expect(err.message).toMatch(message);
  });

  it('accepts 200 as well as step-ca’s 201', async () => {
    const url = await rootsServer(ca, { status: 200, body: rootsOf(ca) });
    expect((await fetchRoots(url, { roots: [ca.root.pem] })).map((c) => c.subject)).toEqual(['CN=Pinned Root CA']);
  });
});

describe('trustFromRootFile', () => {
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('keeps the roots matching a pin, or all of them without pins', () => {
    const path = file('both.pem', ca.root.pem + other.root.pem);
    expect(trustFromRootFile(path, [other.fingerprint], NOW).roots.map((r) => r.fingerprint)).toEqual([
      other.fingerprint,
    ]);
    expect(trustFromRootFile(path, [], NOW).roots.map((r) => r.fingerprint)).toEqual([
      ca.fingerprint,
      other.fingerprint,
    ]);
  });

  it('refuses a missing file, a file without PEM and a file without the pinned root', () => {
    expect(() => trustFromRootFile(join(dir, 'none.pem'), [], NOW)).toThrow(ConfigError);
    expect(() => trustFromRootFile(join(dir, 'none.pem'), [], NOW)).toThrow(/none\.pem does not exist/);
    expect(() => trustFromRootFile(file('empty.pem', 'hello\n'), [], NOW)).toThrow(/holds no PEM certificate/);
    expect(() => trustFromRootFile(file('other.pem', other.root.pem), [ca.fingerprint], NOW)).toThrow(
      new TrustError(
        `fingerprint mismatch: expected ${ca.fingerprint}, ${join(dir, 'other.pem')} holds ${other.fingerprint}`,
      ),
    );
  });
});
