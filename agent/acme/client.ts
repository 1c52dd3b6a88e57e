/**
 * The only module that speaks ACME (RFC 8555): account, order, challenges
 * (answered by the injected solver, each withdrawn in `finally`), CSR,
 * finalize, download. Polling is tuned for a CA on the local network, and
 * every failure is a typed error that keeps the CA's own words. The whole
 * order has a deadline, since a pass holds the lock and the challenge port.
 *
 * It is written directly on node:crypto and node:https (see transport.ts and
 * pki/der.ts) rather than on acme-client: the same protocol steps, without loading
 * axios, an ASN.1 stack and node-forge at every start of every container.
 */
import { isIP } from 'node:net';
import { AgentError, CaProtocolError, CaUnavailableError } from '../lib/errors.js';
import { AcmeTransport, PROBLEM_PREFIX } from './transport.js';
import { createCsr } from '../pki/der.js';
import type { Challenge, Solver } from '../challenge/types.js';

export interface IssueRequest {
  directoryUrl: string;
  /** The pinned roots: the only trust anchors for every ACME request. */
  roots: string[];
  accountKeyPem: string;
  /** Known account URL; without it (or when the CA forgot it) an account is registered. */
  accountUrl?: string;
  email?: string;
  domains: string[];
  /** The new certificate's key; as a promise it is generated while the order runs (needed at finalize). */
  certKeyPem: string | Promise<string>;
  /** Answers one challenge type; the order uses that challenge of each authorization. */
  solver: Solver;
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
  /**
   * Runs when the CA has refused a challenge, with the challenge still
   * presented (a self-check: it fetches the token as the CA did, to say
   * why); awaited before the CA's refusal is thrown, so what it found can
   * explain it. Not run on success: a validation the CA passed needs no
   * explanation, and the fetch would cost every renewal a quarter of its
   * CPU. Must not throw; if it does, the CA's refusal is thrown as it is.
   */
  explainRefusal?: (challenge: Challenge) => Promise<void>;
  /** The whole order (account to download) is abandoned after this long; default ORDER_TIMEOUT_MS. */
  timeoutMs?: number;
}

export interface IssueResult {
  /** Leaf followed by intermediates, as the CA sent them. */
  fullchainPem: string;
  accountUrl: string;
  /** True when the CA no longer knew the saved account and a new one was registered. */
  accountRecreated: boolean;
}

interface ChallengeObject {
  type: string;
  url: string;
  token: string;
  status: string;
  error?: { type?: string; detail?: string };
}
interface Authorization {
  status: string;
  identifier: { type: string; value: string };
  challenges: ChallengeObject[];
}
interface Order {
  status: string;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: { detail?: string };
}

/**
 * Polling for a CA on the local network: step-ca validates while answering the
 * challenge POST, so the first poll after 50 ms usually sees the result. The
 * delay doubles up to 2 s; about 30 s in all before giving up.
 */
const POLL = { firstMs: 50, maxMs: 2000, totalMs: 30_000 } as const;
/** Pauses before re-POSTing a challenge the CA could not validate yet (a proxy reloading, a slow listener). */
const CHALLENGE_RETRIES = [250, 1000, 2000] as const;
/** The longest pause a CA's Retry-After may ask for between two polls. */
export const MAX_RETRY_AFTER_MS = 10_000;
/** A pass holds the lock and the challenge listener: the whole order gets this long, then it is abandoned. */
export const ORDER_TIMEOUT_MS = 10 * 60_000;

/** The CA says it no longer knows the account (RFC 8555's accountDoesNotExist). */
export function isUnknownAccount(err: AgentError): boolean {
  return err instanceof CaProtocolError && err.problemType === `${PROBLEM_PREFIX}accountDoesNotExist`;
}

export async function issueCertificate(req: IssueRequest): Promise<IssueResult> {
  const emit = req.onEvent ?? (() => undefined);
  const timeoutMs = req.timeoutMs ?? ORDER_TIMEOUT_MS;
  const acme = new AcmeTransport(req.directoryUrl, req.roots, req.accountKeyPem);
  const work = (async () => {
    try {
      return await issueWithAccount(acme, req, req.accountUrl, emit, false);
    } catch (err) {
      if (req.accountUrl && err instanceof AgentError && (isUnknownAccount(err) || (await lostBehind500(acme, err)))) {
        emit('account_unknown', { error: err.message });
        acme.kid = undefined;
        return await issueWithAccount(acme, req, undefined, emit, true);
      }
      throw err;
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    const message =
      `the ACME order did not complete within ${Math.round(timeoutMs / 1000)}s (renewal.orderTimeout); ` +
      'it was abandoned and the challenge listener and the lock released; the current certificate stays';
    timer = setTimeout(() => reject(new CaUnavailableError(message)), timeoutMs);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
    // Closing the transport ends an abandoned order's requests and stops it before it publishes anything more.
    acme.close();
    work.catch(() => undefined);
  }
}

/**
 * An HTTP 500 is the CA's own failure, with one exception: step-ca versions
 * that answer a request of an account they lost (a database reset) with a
 * 500 instead of accountDoesNotExist. Which of the two it is, the CA says
 * when asked for the account by key (RFC 8555 onlyReturnExisting): a 500 is
 * taken for a lost account only when the CA answers that it has none.
 */
async function lostBehind500(acme: AcmeTransport, err: AgentError): Promise<boolean> {
  if (!(err instanceof CaProtocolError) || err.httpStatus !== 500) return false;
  const kid = acme.kid;
  acme.kid = undefined;
  try {
    const dir = await acme.directory();
    await acme.post(dir.newAccount, { onlyReturnExisting: true });
    return false;
  } catch (probe) {
    return probe instanceof AgentError && isUnknownAccount(probe);
  } finally {
    acme.kid = kid;
  }
}

/** Runs one protocol step; a CA error is reported with the step it broke. */
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CaProtocolError)
      throw new CaProtocolError(`ACME ${name} failed: ${err.message}`, err.problemType, err.httpStatus);
    throw err;
  }
}

/**
 * Each pending authorization's challenge of the solver's type: presented,
 * answered, and withdrawn in `finally` whatever happened.
 */
async function answerAuthorizations(
  acme: AcmeTransport,
  req: IssueRequest,
  authorizations: { url: string; authz: Authorization }[],
): Promise<void> {
  const { solver } = req;
  const presented: Challenge[] = [];
  try {
    for (const { url, authz } of authorizations) {
      if (authz.status === 'valid') continue;
      const offered = authz.challenges.find((c) => c.type === solver.type);
      if (!offered)
        throw new CaProtocolError(
          `the CA offers no ${solver.type} challenge for ${authz.identifier.value}; offered: ${authz.challenges.map((c) => c.type).join(', ')}`,
        );
      const challenge: Challenge = {
        type: offered.type,
        identifier: { type: authz.identifier.type === 'ip' ? 'ip' : 'dns', value: authz.identifier.value },
        token: offered.token,
        keyAuthorization: `${offered.token}.${acme.thumbprint()}`,
      };
      acme.ensureOpen();
      await solver.present(challenge);
      presented.push(challenge);
      try {
        await answerChallenge(acme, url, authz, offered);
      } catch (err) {
        // The CA's verdict (not an outage): explained while the token is still there.
        if (err instanceof CaProtocolError)
          await Promise.resolve(req.explainRefusal?.(challenge)).catch(() => undefined);
        throw err;
      }
    }
  } finally {
    for (const challenge of presented) await solver.cleanup(challenge).catch(() => undefined);
  }
}

async function issueWithAccount(
  acme: AcmeTransport,
  req: IssueRequest,
  accountUrl: string | undefined,
  emit: NonNullable<IssueRequest['onEvent']>,
  recreated: boolean,
): Promise<IssueResult> {
  const dir = await step('directory', () => acme.directory());
  if (accountUrl) {
    acme.kid = accountUrl;
  } else {
    const created = await step('account registration', () =>
      acme.post(dir.newAccount, {
        termsOfServiceAgreed: true,
        ...(req.email ? { contact: [`mailto:${req.email}`] } : {}),
      }),
    );
    const location = created.headers.location;
    if (typeof location !== 'string')
      throw new CaProtocolError('ACME account registration failed: the CA gave no account URL (Location header)');
    acme.kid = accountUrl = location;
    emit('account_registered', { accountUrl });
  }

  const identifiers = req.domains.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value }));
  const created = await step('new order', () => acme.post<Order>(dir.newOrder, { identifiers }));
  const orderUrl = created.headers.location;
  if (typeof orderUrl !== 'string')
    throw new CaProtocolError('ACME new order failed: the CA gave no order URL (Location header)');
  let order = created.body;
  const authorizations = await step('authorizations', () =>
    Promise.all(
      order.authorizations.map(async (url) => ({ url, authz: (await acme.post<Authorization>(url, undefined)).body })),
    ),
  );

  await answerAuthorizations(acme, req, authorizations);

  const csr = createCsr(req.domains, await req.certKeyPem).toString('base64url');
  order = (await step('finalize', () => acme.post<Order>(order.finalize, { csr }))).body;
  if (order.status !== 'valid')
    order = await poll(
      acme,
      orderUrl,
      'order completion',
      (o: Order) => o.status === 'valid',
      (o: Order) => o.status === 'invalid' && `the order became invalid: ${o.error?.detail ?? 'no detail'}`,
    );
  const certUrl = order.certificate;
  if (!certUrl) throw new CaProtocolError('ACME certificate download failed: the valid order names no certificate URL');
  const download = await step('certificate download', () =>
    acme.post<string>(certUrl, undefined, { raw: true, accept: 'application/pem-certificate-chain' }),
  );
  return { fullchainPem: download.body, accountUrl, accountRecreated: recreated };
}

/**
 * Tells the CA to validate, then waits for the verdict. step-ca validates
 * inside the POST and, when it cannot fetch the token, leaves the challenge
 * "pending" with an error instead of failing it: that error is the real
 * cause ("connection refused on port 80"), so it is retried a few times by
 * POSTing again (ACME allows a client to retry a challenge) and then reported as it is, rather than
 * polling an authorization that will never change.
 */
async function answerChallenge(
  acme: AcmeTransport,
  authzUrl: string,
  authz: Authorization,
  challenge: ChallengeObject,
): Promise<void> {
  const name = authz.identifier.value;
  const type = challenge.type;
  for (let attempt = 0; ; attempt++) {
    const answer = (await step(`challenge for ${name}`, () => acme.post<ChallengeObject>(challenge.url, {}))).body;
    if (answer.status === 'valid') return;
    if (answer.status === 'invalid' || (answer.error && attempt >= CHALLENGE_RETRIES.length)) {
      throw new CaProtocolError(
        `${type} validation of ${name} failed: ${answer.error?.detail ?? 'no detail from the CA'}`,
        answer.error?.type,
      );
    }
    if (!answer.error) {
      await poll(
        acme,
        authzUrl,
        `validation of ${name}`,
        (a: Authorization) => a.status === 'valid',
        (a: Authorization) =>
          a.status === 'invalid' &&
          `${type} validation of ${name} failed: ${a.challenges.find((c) => c.type === type)?.error?.detail ?? 'the authorization became invalid'}`,
      );
      return;
    }
    await new Promise((r) => setTimeout(r, CHALLENGE_RETRIES[attempt]));
  }
}

/**
 * Polls until done. A Retry-After from the CA (seconds or an HTTP date) is
 * honoured up to MAX_RETRY_AFTER_MS and does not count against the poll's
 * own 30 s: the order's deadline bounds a CA that keeps asking to wait.
 */
async function poll<T>(
  acme: AcmeTransport,
  url: string,
  what: string,
  done: (t: T) => boolean,
  failed: (t: T) => string | false,
): Promise<T> {
  let deadline = Date.now() + POLL.totalMs;
  for (let backoff: number = POLL.firstMs; ; backoff = Math.min(backoff * 2, POLL.maxMs)) {
    const answer = await step(what, () => acme.post<T>(url, undefined));
    const item = answer.body;
    if (done(item)) return item;
    const why = failed(item);
    if (why) throw new CaProtocolError(why);
    const asked = retryAfterMs(answer.headers['retry-after']);
    const delay = asked === undefined ? backoff : Math.min(asked, MAX_RETRY_AFTER_MS);
    if (asked !== undefined) deadline += delay;
    if (Date.now() + delay > deadline)
      throw new CaProtocolError(`ACME ${what} failed: still not done after ${POLL.totalMs / 1000}s`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Retry-After as milliseconds from now: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return undefined; // IMF-fixdate only
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
