/**
 * The ACME client's order against the in-process fake CA: the happy path
 * (every POST's JWS checked by the fake), and the protocol's edge cases that
 * otherwise need a relay in front of a real step-ca — a badNonce, an account
 * the CA lost (told as accountDoesNotExist or hidden behind a 500), a
 * Retry-After on an order or authorization poll, an order or a challenge
 * that turns invalid.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { issueCertificate, type IssueRequest } from '../../../agent/acme/client.js';
import type { Challenge, Solver } from '../../../agent/challenge/types.js';
import { CaProtocolError } from '../../../agent/lib/errors.js';
import { generateKeyPem } from '../../../agent/pki/keys.js';
import { FakeAcme, problem } from '../../harness/fake-acme.js';

let acme: FakeAcme;
let accountKeyPem: string;

/** Serves what it is given, as a solver would, so the fake can check the key authorization. */
function recordingSolver(): Solver & { served: Map<string, string>; log: string[] } {
  const served = new Map<string, string>();
  const log: string[] = [];
  return {
    type: 'http-01',
    served,
    log,
    present: (c: Challenge) => (
      log.push(`present ${c.identifier.value}`),
      served.set(c.token, c.keyAuthorization),
      Promise.resolve()
    ),
    cleanup: (c: Challenge) => (log.push(`cleanup ${c.identifier.value}`), served.delete(c.token), Promise.resolve()),
    close: () => Promise.resolve(),
  };
}

let solver: ReturnType<typeof recordingSolver>;
/** The POSTs the fake answered, as `route status`. */
const posts = () =>
  acme.log.filter((l) => !['directory', 'newNonce'].includes(l.route)).map((l) => `${l.route} ${l.status}`);
const events: string[] = [];
const order = (over: Partial<IssueRequest> = {}) =>
  issueCertificate({
    directoryUrl: acme.directoryUrl,
    roots: acme.roots,
    accountKeyPem,
    domains: ['app.internal', '127.0.0.1'],
    certKeyPem: generateKeyPem('ec-p256'),
    solver,
    onEvent: (event) => events.push(event),
    ...over,
  });

beforeAll(async () => {
  acme = await FakeAcme.start();
  accountKeyPem = await generateKeyPem('ec-p256');
});
afterAll(() => acme.close());
beforeEach(() => {
  solver = recordingSolver();
  events.length = 0;
  acme.reset();
  acme.validate = (_authz, token, keyAuthorization) => solver.served.get(token) === keyAuthorization;
});

describe('an order against a CA that checks every JWS', () => {
  it('registers, orders, answers each challenge, finalizes and downloads the chain', async () => {
    const result = await order();
    expect(events).toEqual(['account_registered']);
    expect(result.accountRecreated).toBe(false);
    expect(acme.accounts.has(result.accountUrl)).toBe(true);
    const leaf = new X509Certificate(result.fullchainPem);
    expect(leaf.subjectAltName).toBe('DNS:app.internal, IP Address:127.0.0.1');
    expect(leaf.checkIssued(new X509Certificate(acme.ca.intermediate.pem))).toBe(true);
    // Each challenge withdrawn after it was answered; one nonce request for the whole order.
    expect(solver.log).toEqual([
      'present app.internal',
      'present 127.0.0.1',
      'cleanup app.internal',
      'cleanup 127.0.0.1',
    ]);
    expect(acme.log.every((l) => l.status < 400)).toBe(true);
  });

  it('uses a known account by its URL without registering again', async () => {
    const { accountUrl } = await order();
    acme.log.length = 0;
    events.length = 0;
    const again = await order({ accountUrl });
    expect(again).toMatchObject({ accountUrl, accountRecreated: false });
    expect(acme.count('newAccount')).toBe(0);
    expect(events).toEqual([]);
  });
});

describe('badNonce', () => {
  it('retries with the nonce the refusal carried, in milliseconds', async () => {
    let refused = 0;
    acme.handle('newOrder', (_req, next) => (refused++ < 2 ? problem(400, 'badNonce', 'stale nonce') : next()));
    const started = Date.now();
    await order({ domains: ['app.internal'] });
    expect(refused).toBe(3);
    expect(acme.log.filter((l) => l.route === 'newOrder').map((l) => l.status)).toEqual([400, 400, 201]);
    expect(acme.count('newNonce')).toBe(0); // every answer's Replay-Nonce is used, the refusals' too
    expect(Date.now() - started).toBeLessThan(3000); // no pause between the retries
  });

  it('a nonce the CA forgot is refused by the CA itself and the request retried', async () => {
    let stale = true;
    acme.handle('newOrder', async (_req, next) => ({ ...(await next()), staleNonce: stale && !(stale = false) }));
    await order({ domains: ['app.internal'] });
    // The authorization fetch carried the stale nonce: refused by the fake's own check, then retried.
    expect(posts()).toEqual([
      'newAccount 201',
      'newOrder 201',
      'authz 400',
      'authz 200',
      'challenge 200',
      'finalize 200',
      'certificate 200',
    ]);
  });

  it('gives up after ten retries with the CA’s words', async () => {
    acme.handle('newOrder', () => problem(400, 'badNonce', 'never a good nonce'));
    const err = await order().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CaProtocolError);
    expect((err as Error).message).toBe('ACME new order failed: never a good nonce (badNonce)');
    expect(acme.count('newOrder')).toBe(11);
  });
});

describe('an account the CA lost', () => {
  it('told as accountDoesNotExist: registers again with the same key and completes the order', async () => {
    const { accountUrl } = await order();
    acme.accounts.clear();
    events.length = 0;
    const result = await order({ accountUrl });
    expect(result.accountRecreated).toBe(true);
    expect(result.accountUrl).not.toBe(accountUrl);
    expect(events).toEqual(['account_unknown', 'account_registered']);
  });

  it('hidden behind an HTTP 500: asks for the account by key, then registers again', async () => {
    const { accountUrl } = await order();
    acme.accounts.clear();
    acme.unknownAccount = () => problem(500, 'serverInternal', 'The server experienced an internal error');
    events.length = 0;
    acme.log.length = 0;
    const result = await order({ accountUrl });
    expect(result.accountRecreated).toBe(true);
    // newOrder 500, the onlyReturnExisting probe says accountDoesNotExist, a new registration, the new order.
    expect(posts().slice(0, 4)).toEqual(['newOrder 500', 'newAccount 400', 'newAccount 201', 'newOrder 201']);
  });

  it('a 500 for an account the CA still knows is the CA’s own failure, reported as such', async () => {
    const { accountUrl } = await order();
    acme.log.length = 0;
    acme.handle('newOrder', () => problem(500, 'serverInternal', 'database is locked'));
    const err = await order({ accountUrl }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('ACME new order failed: database is locked (serverInternal)');
    expect((err as CaProtocolError).httpStatus).toBe(500);
    expect(acme.count('newAccount')).toBe(1); // the probe, which found the account
  });
});

describe('polls', () => {
  it('an order poll waits as long as Retry-After asks', async () => {
    acme.handle('finalize', async (_req, next) => {
      const reply = await next();
      return { ...reply, body: { ...(reply.body as object), status: 'processing' } };
    });
    let polls = 0;
    acme.handle('order', async (_req, next) => {
      const reply = await next();
      if (polls++ > 0) return reply;
      return {
        ...reply,
        headers: { ...reply.headers, 'retry-after': '1' },
        body: { ...(reply.body as object), status: 'processing' },
      };
    });
    await order();
    const times = acme.log.filter((l) => l.route === 'order').map((l) => l.at);
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950); // not the 50 ms first backoff
  });

  it('an authorization poll waits as long as Retry-After asks', async () => {
    acme.handle('challenge', async (_req, next) => {
      const reply = await next();
      return { ...reply, body: { ...(reply.body as object), status: 'processing' } };
    });
    const seen = new Map<string, number>();
    acme.handle('authz', async (req, next) => {
      const reply = await next();
      const n = (seen.get(req.id) ?? 0) + 1;
      seen.set(req.id, n);
      // The first answer is the fetch before the challenge, the second the first poll.
      if (n !== 2) return reply;
      return { ...reply, headers: { 'retry-after': '1' }, body: { ...(reply.body as object), status: 'pending' } };
    });
    const started = Date.now();
    await order({ domains: ['app.internal'] });
    expect(seen.get([...seen.keys()][0]!)).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('an order that turns invalid while polled fails with the CA’s reason', async () => {
    acme.handle('finalize', async (_req, next) => {
      const reply = await next();
      return { ...reply, body: { ...(reply.body as object), status: 'processing' } };
    });
    acme.handle('order', async (_req, next) => {
      const reply = await next();
      const body = { ...(reply.body as object), status: 'invalid', error: { detail: 'issuance refused by policy' } };
      return { ...reply, body };
    });
    const err = await order().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CaProtocolError);
    expect((err as Error).message).toBe('the order became invalid: issuance refused by policy');
    expect(acme.count('certificate')).toBe(0);
  });

  it('a challenge the CA refuses fails with its detail; every challenge is withdrawn', async () => {
    acme.validate = () => false;
    const err = await order().catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      'http-01 validation of app.internal failed: the key authorization did not match',
    );
    expect((err as CaProtocolError).problemType).toBe('urn:ietf:params:acme:error:unauthorized');
    expect(solver.log).toEqual(['present app.internal', 'cleanup app.internal']);
    expect(acme.count('finalize')).toBe(0);
  });
});
