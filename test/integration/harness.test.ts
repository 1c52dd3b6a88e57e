// Proves the step-ca harness itself, so a failing agent test can be trusted
// to be about the agent: the CA serves the root we think it does, its TLS
// chains to that root, http-01 reaches acmeHttpPort, resetDatabase() and
// recreate() do what they claim, and the MITM is convincing yet unverifiable.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import * as tls from 'node:tls';
import acme from 'acme-client';
import { startStepCa, fingerprintOf, type StepCa } from '../harness/stepca.js';
import { startMitm, type Mitm } from '../harness/mitm.js';

interface Reply {
  status: number;
  body: string;
}

function get(url: string, tlsOpts: https.RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ...tlsOpts, agent: false, timeout: 5_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject)
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy(new Error('timeout'));
      });
  });
}

/** Strict TLS handshake; resolves on a verified chain + name, rejects otherwise. */
function handshake(port: number, ca: string, servername?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: [ca], servername }, () => {
      s.end();
      resolve();
    });
    s.on('error', reject);
  });
}

/** `openssl s_client` as an independent verifier; resolves to its exit code. */
function sClient(port: number, caFile: string): Promise<number> {
  return new Promise((resolve) => {
    const p = execFile(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-CAfile',
        caFile,
        '-verify_return_error',
        '-verify_ip',
        '127.0.0.1',
        '-brief',
      ],
      { timeout: 10_000 },
      (err) => resolve(err ? (typeof err.code === 'number' ? err.code : 1) : 0),
    );
    p.stdin?.end(); // EOF on stdin makes s_client quit after the handshake
  });
}

describe('step-ca harness', () => {
  let ca: StepCa;
  let mitm: Mitm | undefined;
  const accountKey = acme.crypto.createPrivateKey();

  async function acmeClient(directoryUrl = ca.directoryUrl): Promise<acme.Client> {
    // acme-client's shared axios instance; trust exactly the CA under test.
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: ca.rootPem });
    return new acme.Client({ directoryUrl, accountKey: await accountKey });
  }

  beforeAll(async () => {
    const t0 = Date.now();
    ca = await startStepCa();
    // Visible in CI output, to notice if CA start-up gets slow.
    console.info(`step-ca started in ${Date.now() - t0} ms at ${ca.url}`);
  });

  afterAll(async () => {
    await mitm?.close();
    await ca?.cleanup();
  });

  it('serves its root at /roots (201, one PEM) over TLS that chains to it', async () => {
    expect(ca.rootFingerprint).toMatch(/^[0-9a-f]{64}$/);
    const res = await get(`${ca.url}/roots`, { ca: ca.rootPem });
    expect(res.status).toBe(201);
    const { crts } = JSON.parse(res.body) as { crts: string[] };
    expect(crts).toHaveLength(1);
    expect(fingerprintOf(crts[0]!)).toBe(ca.rootFingerprint);
    // step-ca logs the fingerprint it computes itself at start-up.
    expect(ca.logTail()).toContain(`X.509 Root Fingerprint: ${ca.rootFingerprint}`);
  });

  it('answers the ACME directory with links on the host that was asked', async () => {
    const res = await get(ca.directoryUrl, { ca: ca.rootPem });
    expect(res.status).toBe(200);
    const dir = JSON.parse(res.body) as Record<string, string>;
    expect(dir.newNonce).toBe(`${ca.url}/acme/acme/new-nonce`);
    expect(dir.newOrder).toBe(`${ca.url}/acme/acme/new-order`);
    const viaName = await get(`https://localhost:${ca.port}/acme/acme/directory`, { ca: ca.rootPem });
    expect((JSON.parse(viaName.body) as Record<string, string>).newAccount).toBe(
      `https://localhost:${ca.port}/acme/acme/new-account`,
    );
  });

  it('has a TLS certificate for 127.0.0.1 and localhost that verifies against the root only', async () => {
    await handshake(ca.port, ca.rootPem);
    await handshake(ca.port, ca.rootPem, 'localhost');
    const rootFile = path.join(ca.dir, 'root-under-test.pem');
    fs.writeFileSync(rootFile, ca.rootPem);
    expect(await sClient(ca.port, rootFile)).toBe(0);
    await expect(handshake(ca.port, tls.rootCertificates.join('\n'))).rejects.toThrow();
  });

  it('validates http-01 on acmeHttpPort and issues a certificate', async () => {
    const keyAuths = new Map<string, string>();
    const hits: string[] = [];
    const responder = http.createServer((req, res) => {
      hits.push(`${req.headers.host}${req.url}`);
      const auth = keyAuths.get((req.url ?? '').split('/').pop() ?? '');
      res.writeHead(auth ? 200 : 404).end(auth ?? '');
    });
    await new Promise<void>((r) => responder.listen(ca.acmeHttpPort, '127.0.0.1', r));
    try {
      const client = await acmeClient();
      await client.createAccount({ termsOfServiceAgreed: true });
      const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }] });
      for (const authz of await client.getAuthorizations(order)) {
        const ch = authz.challenges.find((c) => c.type === 'http-01')!;
        keyAuths.set(ch.token, await client.getChallengeKeyAuthorization(ch));
        await client.completeChallenge(ch);
        await client.waitForValidStatus(ch);
      }
      const [, csr] = await acme.crypto.createCsr({ commonName: 'localhost', altNames: ['localhost'] });
      const pem = await client.getCertificate(await client.finalizeOrder(order, csr));
      expect(pem).toContain('BEGIN CERTIFICATE');
      expect(hits.some((h) => h.startsWith(`localhost:${ca.acmeHttpPort}/.well-known/acme-challenge/`))).toBe(true);
    } finally {
      await new Promise((r) => responder.close(r));
    }
  });

  it('resetDatabase() forgets accounts but keeps root and port', async () => {
    const { rootFingerprint, port } = ca;
    const client = await acmeClient();
    await client.createAccount({ termsOfServiceAgreed: true }); // exists from the previous test or now
    await ca.resetDatabase();
    expect(ca.rootFingerprint).toBe(rootFingerprint);
    expect(ca.port).toBe(port);
    await expect((await acmeClient()).createAccount({ onlyReturnExisting: true })).rejects.toThrow(/does not exist/i);
  });

  it('MITM answers /roots with the real root, but its TLS does not verify against it', async () => {
    mitm = await startMitm(ca);
    const res = await get(`${mitm.url}/roots`, { rejectUnauthorized: false });
    expect(res.status).toBe(201);
    expect(fingerprintOf((JSON.parse(res.body) as { crts: string[] }).crts[0]!)).toBe(ca.rootFingerprint);

    await expect(handshake(mitm.port, ca.rootPem)).rejects.toThrow();
    await expect(get(`${mitm.url}/roots`, { ca: ca.rootPem })).rejects.toThrow();
    const rootFile = path.join(ca.dir, 'root-under-test.pem');
    fs.writeFileSync(rootFile, ca.rootPem);
    expect(await sClient(mitm.port, rootFile)).not.toBe(0);

    // Otherwise a well-formed server: valid for its own CA, relaying ACME with
    // links that lead back to itself.
    await handshake(mitm.port, mitm.rootPem, 'localhost');
    const dir = await get(`${mitm.url}/acme/acme/directory`, { ca: mitm.rootPem });
    expect(dir.status).toBe(200);
    expect((JSON.parse(dir.body) as Record<string, string>).newNonce).toBe(`${mitm.url}/acme/acme/new-nonce`);
  });

  it('recreate() swaps in a new root on the same port', async () => {
    const oldRoot = ca.rootPem;
    const { rootFingerprint, port } = ca;
    await ca.recreate();
    expect(ca.port).toBe(port);
    expect(ca.rootFingerprint).not.toBe(rootFingerprint);
    const res = await get(`${ca.url}/roots`, { ca: ca.rootPem });
    expect(res.status).toBe(201);
    expect(fingerprintOf((JSON.parse(res.body) as { crts: string[] }).crts[0]!)).toBe(ca.rootFingerprint);
    await expect(handshake(ca.port, oldRoot)).rejects.toThrow();
  });

  it('honours options, and cleanup() removes everything and may be called twice', async () => {
    const other = await startStepCa({ certDuration: '3m', provisioner: 'short' });
    try {
      expect(other.port).not.toBe(ca.port);
      expect(other.acmeHttpPort).not.toBe(ca.acmeHttpPort);
      expect(other.directoryUrl).toBe(`${other.url}/acme/short/directory`);
      expect((await get(other.directoryUrl, { ca: other.rootPem })).status).toBe(200);
      const cfg = JSON.parse(fs.readFileSync(path.join(other.dir, 'ca.json'), 'utf8'));
      expect(cfg.authority.provisioners[0].claims).toEqual({
        minTLSCertDuration: '1m',
        defaultTLSCertDuration: '3m',
        maxTLSCertDuration: '24h',
      });
    } finally {
      await other.cleanup();
      await other.cleanup();
    }
    expect(fs.existsSync(other.dir)).toBe(false);
    await expect(handshake(other.port, other.rootPem)).rejects.toThrow();
  });
});
