/**
 * The ACME wire layer against the in-process fake CA: signed POSTs the fake
 * verifies, nonces reused from every answer, problem documents turned into
 * typed errors with the CA's words, answers it refuses (not JSON, too large,
 * not a directory), the connection it closes and the account key it
 * accepts. TLS verdicts themselves: test/unit/lib/https.ca-tls.test.ts.
 */
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AcmeTransport } from '../../../agent/acme/transport.js';
import { CaProtocolError, CaUnavailableError } from '../../../agent/lib/errors.js';
import { generateKeyPem } from '../../../agent/pki/keys.js';
import { FakeAcme, problem } from '../../harness/fake-acme.js';

let acme: FakeAcme;
let keyPem: string;
const transports: AcmeTransport[] = [];
const open = (pem = keyPem, url = acme.directoryUrl) => {
  const t = new AcmeTransport(url, acme.roots, pem);
  transports.push(t);
  return t;
};
/** Forgets the nonce the transport holds, as if its last answer carried none. */
const dropNonce = (t: AcmeTransport) => ((t as unknown as { nonce?: string }).nonce = undefined);
const fail = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('resolved'),
    (e: unknown) => e as CaProtocolError,
  );

beforeAll(async () => {
  acme = await FakeAcme.start();
  keyPem = await generateKeyPem('ec-p256');
});
afterAll(async () => {
  for (const t of transports) t.close();
  await acme.close();
});
beforeEach(() => acme.reset());

describe('signed requests', () => {
  it('registers with the key, then signs with the account URL; the fake verifies both', async () => {
    const t = open();
    const dir = await t.directory();
    const created = await t.post<{ status: string }>(dir.newAccount, { termsOfServiceAgreed: true });
    expect(created.status).toBe(201);
    t.kid = created.headers.location as string;
    const account = await t.post<{ status: string }>(t.kid, undefined);
    expect(account.body).toEqual({ status: 'valid' });
    // One nonce from the directory's answer, then each answer's: no newNonce request at all.
    expect(acme.count('newNonce')).toBe(0);
  });

  it('a stale nonce is refused and the POST retried with the refusal’s nonce', async () => {
    const t = open();
    acme.handle('directory', async (_r, next) => ({ ...(await next()), staleNonce: true }));
    await t.directory();
    await t.post(`${acme.origin}/new-account`, {});
    expect(acme.log.map((l) => `${l.route} ${l.status}`)).toEqual([
      'directory 200',
      'newAccount 400',
      'newAccount 201',
    ]);
  });

  it('asks newNonce, with a GET, when it holds no nonce', async () => {
    const t = open();
    await t.directory();
    dropNonce(t);
    await t.post(`${acme.origin}/new-account`, {});
    expect(acme.log.map((l) => l.route)).toEqual(['directory', 'newNonce', 'newAccount']);
  });

  it('a signature by another key than the account’s is refused by the CA, and reported with its words', async () => {
    const a = open();
    const dir = await a.directory();
    const accountUrl = (await a.post(dir.newAccount, {})).headers.location as string;
    const b = open(await generateKeyPem('ec-p256'));
    b.kid = accountUrl;
    const err = await fail(b.post(accountUrl, undefined));
    expect(err).toBeInstanceOf(CaProtocolError);
    expect(err.message).toBe('the JWS signature does not verify (unauthorized)');
    expect(err.httpStatus).toBe(403);
    expect(err.problemType).toBe('urn:ietf:params:acme:error:unauthorized');
  });

  it('the thumbprint is RFC 7638’s: SHA-256 of the required members in order', () => {
    const jwk = createPublicKey(keyPem).export({ format: 'jwk' });
    const canonical = `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
    expect(open().thumbprint()).toBe(createHash('sha256').update(canonical).digest('base64url'));
  });

  it('refuses an account key that is not EC P-256, saying what to do', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    expect(() => open(rsa as string)).toThrow(/must be an EC P-256 key; remove account.key/);
  });
});

describe('problem documents and answers it refuses', () => {
  it('a problem document: detail, the type without its prefix, the HTTP status', async () => {
    acme.handle('newAccount', () => problem(403, 'rejectedIdentifier', 'example.com is not allowed'));
    const t = open();
    const err = await fail(t.post(`${acme.origin}/new-account`, { identifiers: [] }));
    expect(err.message).toBe('example.com is not allowed (rejectedIdentifier)');
    expect(err.httpStatus).toBe(403);
  });

  it('an error that is not a problem document: the HTTP status alone', async () => {
    acme.handle('newAccount', () => ({ status: 502, body: '<html>Bad Gateway</html>' }));
    const err = await fail(open().post(`${acme.origin}/new-account`, {}));
    expect(err.message).toBe('HTTP 502');
    expect(err.problemType).toBeUndefined();
  });

  it('a success that is not JSON, unless asked for raw', async () => {
    acme.handle('account', () => ({ status: 200, body: 'not json' }));
    const t = open();
    const url = `${acme.origin}/acct/x`;
    const dir = await t.directory();
    t.kid = (await t.post(dir.newAccount, {})).headers.location as string;
    expect((await fail(t.post(url, undefined))).message).toBe(`${url} did not answer JSON: "not json"`);
    expect((await t.post<string>(url, undefined, { raw: true })).body).toBe('not json');
  });

  it('refuses an answer over 1 MiB', async () => {
    acme.handle('newAccount', () => ({ status: 200, body: Buffer.alloc(1024 * 1024 + 1, 0x20) }));
    const url = `${acme.origin}/new-account`;
    const err = await fail(open().post(url, {}));
    expect(err).toBeInstanceOf(CaProtocolError);
    expect(err.message).toBe(`${url} answered with more than 1048576 bytes; refusing it`);
  });

  it('a directory that is not ACME names ca.provisioner', async () => {
    acme.handle('directory', () => ({ status: 200, body: { hello: 'world' } }));
    const err = await fail(open().directory());
    expect(err.message).toBe(
      `${acme.directoryUrl} is not an ACME directory (HTTP 200); check ca.provisioner or ca.directory`,
    );
  });

  it('a newNonce without Replay-Nonce', async () => {
    const t = open();
    await t.directory();
    dropNonce(t);
    acme.handle('newNonce', () => ({ status: 204, headers: { 'replay-nonce': '' } }));
    const err = await fail(t.post(`${acme.origin}/new-account`, {}));
    expect(err.message).toBe(`${acme.origin}/new-nonce gave no Replay-Nonce header`);
  });
});

describe('the connection', () => {
  it('once closed, sends nothing more (an abandoned order)', async () => {
    const t = open();
    await t.directory();
    t.close();
    acme.reset();
    await expect(t.post(`${acme.origin}/new-account`, {})).rejects.toBeInstanceOf(CaUnavailableError);
    expect(acme.log).toEqual([]);
  });
});
