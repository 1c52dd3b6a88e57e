/**
 * The only module that speaks ACME (RFC 8555). It drives acme-client's
 * low-level methods so that the order is under our control: polling tuned
 * for a CA on the local network, http-01 published through two injected
 * callbacks and always withdrawn in `finally`, and every failure turned into
 * a typed error that keeps the real cause (acme-client alone turns a TLS
 * failure into a TypeError and drops the problem type).
 */
import { Agent as HttpsAgent } from 'node:https';
import { isIP } from 'node:net';
import acme from 'acme-client';
import axios, { type AxiosAdapter, type InternalAxiosRequestConfig } from 'axios';
import { AgentError, CaProtocolError, describeError } from './errors.js';
import { classifyNetworkError } from './http.js';

/** How the http-01 key authorization is made reachable; see agent/challenge/. */
export interface ChallengeResponder {
  publish(token: string, keyAuthorization: string): Promise<void>;
  unpublish(token: string): Promise<void>;
}

export interface IssueRequest {
  directoryUrl: string;
  /** The pinned roots: the only trust anchors for every ACME request. */
  roots: string[];
  accountKeyPem: string;
  /** Known account URL; without it (or when the CA forgot it) an account is registered. */
  accountUrl?: string;
  email?: string;
  domains: string[];
  certKeyPem: string;
  responder: ChallengeResponder;
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

export interface IssueResult {
  /** Leaf followed by intermediates, as the CA sent them. */
  fullchainPem: string;
  accountUrl: string;
  /** True when the CA no longer knew the saved account and a new one was registered. */
  accountRecreated: boolean;
}

/**
 * Polling for a CA on the local network: step-ca validates while answering the
 * challenge POST, so the first poll after 50 ms usually sees "valid". The cap
 * keeps a slow CA from stretching one poll beyond 2 s; 20 polls ≈ 30 s total.
 */
const POLLING = { backoffAttempts: 20, backoffMin: 50, backoffMax: 2000 } as const;
/** One request may take this long before the CA counts as unavailable. */
const REQUEST_TIMEOUT_MS = 15_000;

const PROBLEM_PREFIX = 'urn:ietf:params:acme:error:';
let lastProblem: { type: string; status: number } | undefined;

function configureTransport(roots: string[]): void {
  const instance = acme.axios;
  instance.defaults.httpsAgent = new HttpsAgent({ ca: roots, rejectUnauthorized: true, keepAlive: true });
  instance.defaults.timeout = REQUEST_TIMEOUT_MS;
  // The daemon has its own backoff; acme-client's 5 retries of 5-25 s would
  // hide a dead CA for over a minute. One quick retry covers a CA restart.
  (instance.defaults as unknown as { acmeSettings: Record<string, number> }).acmeSettings.retryMaxAttempts = 1;
  (instance.defaults as unknown as { acmeSettings: Record<string, number> }).acmeSettings.retryDefaultDelay = 1;
  if (!(instance.defaults as { certAgentWrapped?: boolean }).certAgentWrapped) {
    const http = axios.getAdapter('http') as AxiosAdapter;
    // A transport failure is re-thrown as our own error object without
    // `config`, which acme-client's interceptor passes through untouched
    // instead of crashing on it and losing the cause.
    instance.defaults.adapter = async (config: InternalAxiosRequestConfig) => {
      try {
        return await http(config);
      } catch (err) {
        if ((err as { response?: unknown }).response) throw err;
        throw classifyNetworkError(err, config.url ?? '');
      }
    };
    instance.interceptors.response.use((response) => {
      const data = response.data as { type?: unknown } | undefined;
      if (response.status >= 400 && typeof data?.type === 'string' && data.type.startsWith(PROBLEM_PREFIX)) {
        lastProblem = { type: data.type, status: response.status };
      } else if (response.status >= 500) {
        lastProblem = { type: '', status: response.status };
      }
      return response;
    });
    (instance.defaults as { certAgentWrapped?: boolean }).certAgentWrapped = true;
  }
}

/** Wraps whatever acme-client threw into a typed error carrying the problem type. */
function toAgentError(err: unknown, step: string): AgentError {
  if (err instanceof AgentError) return err;
  const problem = lastProblem;
  const detail = describeError(err);
  return new CaProtocolError(`ACME ${step} failed: ${detail}${problem?.type ? ` (${problem.type.slice(PROBLEM_PREFIX.length)})` : ''}`, problem?.type || undefined, problem?.status);
}

/** The CA no longer knows the account: RFC 8555's problem, or step-ca's HTTP 500 after a database reset. */
export function isUnknownAccount(err: AgentError): boolean {
  if (!(err instanceof CaProtocolError)) return false;
  // A genuine 500 also lands here; registering again with the same key is
  // harmless then (the CA answers with the existing account).
  return err.problemType === `${PROBLEM_PREFIX}accountDoesNotExist` || err.httpStatus === 500;
}

export async function issueCertificate(req: IssueRequest): Promise<IssueResult> {
  configureTransport(req.roots);
  const emit = req.onEvent ?? (() => undefined);
  try {
    return await issueWithAccount(req, req.accountUrl, emit, false);
  } catch (err) {
    if (req.accountUrl && err instanceof AgentError && isUnknownAccount(err)) {
      emit('account_unknown', { error: err.message });
      return issueWithAccount(req, undefined, emit, true);
    }
    throw err;
  }
}

async function issueWithAccount(req: IssueRequest, accountUrl: string | undefined, emit: NonNullable<IssueRequest['onEvent']>, recreated: boolean): Promise<IssueResult> {
  const client = new acme.Client({ directoryUrl: req.directoryUrl, accountKey: req.accountKeyPem, ...(accountUrl ? { accountUrl } : {}), ...POLLING });
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    lastProblem = undefined;
    try {
      return await fn();
    } catch (err) {
      throw toAgentError(err, name);
    }
  };

  if (!accountUrl) {
    await step('account registration', () => client.createAccount({ termsOfServiceAgreed: true, ...(req.email ? { contact: [`mailto:${req.email}`] } : {}) }));
    accountUrl = client.getAccountUrl();
    emit('account_registered', { accountUrl });
  }

  const identifiers = req.domains.map((value) => ({ type: isIpLiteral(value) ? 'ip' : 'dns', value }));
  let order = await step('new order', () => client.createOrder({ identifiers }));
  const authorizations = await step('authorizations', () => client.getAuthorizations(order));
  const published: string[] = [];
  try {
    for (const authz of authorizations) {
      if (authz.status === 'valid') continue;
      const challenge = authz.challenges.find((c) => c.type === 'http-01');
      if (!challenge) throw new CaProtocolError(`the CA offers no http-01 challenge for ${authz.identifier.value}; offered: ${authz.challenges.map((c) => c.type).join(', ')}`);
      const keyAuthorization = await step('key authorization', () => client.getChallengeKeyAuthorization(challenge));
      await req.responder.publish(challenge.token, keyAuthorization);
      published.push(challenge.token);
      await answerChallenge(client, authz, challenge, step);
    }
  } finally {
    for (const token of published) await req.responder.unpublish(token).catch(() => undefined);
  }

  const [, csr] = await step('CSR', () => acme.crypto.createCsr({ commonName: req.domains[0], altNames: req.domains }, req.certKeyPem));
  order = await step('finalize', () => client.finalizeOrder(order, csr));
  if (order.status !== 'valid') order = await step('order completion', () => client.waitForValidStatus(order));
  const fullchainPem = await step('certificate download', () => client.getCertificate(order));
  return { fullchainPem, accountUrl, accountRecreated: recreated };
}

type Step = <T>(name: string, fn: () => Promise<T>) => Promise<T>;
type Authorization = Awaited<ReturnType<acme.Client['getAuthorizations']>>[number];
type Challenge = Authorization['challenges'][number];

/**
 * Tells the CA to validate, then waits for the verdict. step-ca validates
 * inside the POST and, when it cannot fetch the token, leaves the challenge
 * "pending" with an error instead of failing it: that error is the real
 * cause ("connection refused on port 80"), so it is retried a few times by
 * POSTing again (RFC 8555 §7.5.1) and then reported as it is, rather than
 * polling an authorization that will never change.
 */
async function answerChallenge(client: acme.Client, authz: Authorization, challenge: Challenge, step: Step): Promise<void> {
  const name = authz.identifier.value;
  for (let attempt = 0; ; attempt++) {
    const answer = (await step(`challenge for ${name}`, () => client.completeChallenge(challenge))) as Challenge & { error?: { detail?: string; type?: string } };
    if (answer.status === 'valid') return;
    if (answer.status === 'invalid' || (answer.error && attempt >= CHALLENGE_RETRIES.length)) {
      const detail = answer.error?.detail ?? 'no detail from the CA';
      throw new CaProtocolError(`http-01 validation of ${name} failed: ${detail}`, answer.error?.type);
    }
    if (!answer.error) {
      await step(`validation of ${name}`, () => client.waitForValidStatus(authz));
      return;
    }
    await new Promise((r) => setTimeout(r, CHALLENGE_RETRIES[attempt]));
  }
}

/** Pauses before re-POSTing a challenge the CA could not validate yet (a proxy reloading, a slow listener). */
const CHALLENGE_RETRIES = [250, 1000, 2000] as const;

function isIpLiteral(value: string): boolean {
  return isIP(value) !== 0;
}
