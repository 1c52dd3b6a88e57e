/**
 * The ACME wire layer: JWS-signed POSTs over HTTPS, nonces,
 * problem documents. Built on node:https with the pinned roots as the only
 * trust anchors and one keep-alive connection pool per pass. Failures come
 * out typed: a TLS failure as TrustError, no answer as CaUnavailableError, a
 * problem document as CaProtocolError carrying its type and status.
 */
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { Agent } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { CaProtocolError, CaUnavailableError } from '../lib/errors.js';
import { sendHttps } from '../lib/https.js';

export const PROBLEM_PREFIX = 'urn:ietf:params:acme:error:';
/** One request may take this long before the CA counts as unavailable. */
const REQUEST_TIMEOUT_MS = 15_000;
/** A certificate chain or an order is a few kilobytes; refuse anything absurd. */
const MAX_BODY_BYTES = 1024 * 1024;
/**
 * A badNonce answer carries a fresh nonce; retry with it this many times (no
 * extra round trip). A CA that refuses a fifth of good nonces (Pebble's fault
 * injection) fails a request with 0.2^11, about 2e-8; with 3 retries it was
 * 0.2^4, which over the ~40 requests of four renewals failed one run in ~16.
 */
const BAD_NONCE_RETRIES = 10;

export interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  [key: string]: unknown;
}

export interface AcmeAnswer<T> {
  status: number;
  headers: IncomingHttpHeaders;
  body: T;
}

const b64u = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** One keep-alive connection to the CA; OpenSSL verifies it with the pinned roots as the only CA store. */
const caAgent = (roots: string[]) => new Agent({ ca: roots, rejectUnauthorized: true, keepAlive: true, maxSockets: 1 });

/** One request to the CA over `agent`, with the headers, time limit and size limit every ACME request has. */
function caRequest(
  agent: Agent,
  method: 'GET' | 'POST',
  url: string,
  body?: string,
  accept = 'application/json',
): Promise<AcmeAnswer<string>> {
  const headers: Record<string, string> = {
    accept,
    'user-agent': 'cert-agent',
    ...(body !== undefined ? { 'content-type': 'application/jose+json' } : {}),
  };
  return sendHttps(url, {
    method,
    agent,
    headers,
    ...(body !== undefined ? { body } : {}),
    timeoutMs: REQUEST_TIMEOUT_MS,
    maxBytes: MAX_BODY_BYTES,
  });
}

export class AcmeTransport {
  private readonly agent: Agent;
  private readonly key: KeyObject;
  private readonly jwk: Record<string, string>;
  private nonce: string | undefined;
  private dir: Directory | undefined;
  private closed = false;
  /** Set once the account is known: later requests are signed with `kid` instead of the key. */
  kid: string | undefined;

  constructor(
    readonly directoryUrl: string,
    roots: string[],
    accountKeyPem: string,
  ) {
    this.agent = caAgent(roots);
    this.key = createPrivateKey(accountKeyPem);
    const { crv, kty, x, y } = createPublicKey(this.key).export({ format: 'jwk' }) as Record<string, string>;
    // The agent creates account keys as P-256 (store/account.ts), hence ES256 only.
    if (kty !== 'EC' || crv !== 'P-256')
      throw new CaProtocolError(
        'the ACME account key must be an EC P-256 key; remove account.key from the state directory to create one',
      );
    this.jwk = { crv, kty, x: x as string, y: y as string };
  }

  /** RFC 7638 thumbprint: members in lexicographic order, no whitespace. */
  thumbprint(): string {
    const { crv, kty, x, y } = this.jwk;
    return b64u(createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest());
  }

  async directory(): Promise<Directory> {
    if (this.dir) return this.dir;
    const answer = await this.send('GET', this.directoryUrl);
    const dir = parseJson(answer.body, this.directoryUrl) as Partial<Directory>;
    if (
      answer.status !== 200 ||
      typeof dir.newNonce !== 'string' ||
      typeof dir.newAccount !== 'string' ||
      typeof dir.newOrder !== 'string'
    ) {
      throw new CaProtocolError(
        `${this.directoryUrl} is not an ACME directory (HTTP ${answer.status}); check ca.provisioner or ca.directory`,
        undefined,
        answer.status,
      );
    }
    this.dir = dir as Directory;
    return this.dir;
  }

  /** A signed POST; `payload` undefined is POST-as-GET. Parses JSON unless `raw`. */
  async post<T>(url: string, payload: unknown, opts: { raw?: boolean; accept?: string } = {}): Promise<AcmeAnswer<T>> {
    for (let attempt = 0; ; attempt++) {
      const nonce = this.nonce ?? (await this.freshNonce());
      this.nonce = undefined;
      const header = { alg: 'ES256', nonce, url, ...(this.kid ? { kid: this.kid } : { jwk: this.jwk }) };
      const protectedB64 = b64u(JSON.stringify(header));
      const payloadB64 = payload === undefined ? '' : b64u(JSON.stringify(payload));
      const signature = sign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`), {
        key: this.key,
        dsaEncoding: 'ieee-p1363',
      });
      const body = JSON.stringify({ protected: protectedB64, payload: payloadB64, signature: b64u(signature) });
      const answer = await this.send('POST', url, body, opts.accept);
      const problem = answer.status >= 400 ? asProblem(answer.body) : undefined;
      if (problem?.type === `${PROBLEM_PREFIX}badNonce` && attempt < BAD_NONCE_RETRIES) continue;
      if (answer.status >= 400) {
        const detail = problem?.detail ?? `HTTP ${answer.status}`;
        throw new CaProtocolError(
          `${detail}${problem?.type ? ` (${problem.type.replace(PROBLEM_PREFIX, '')})` : ''}`,
          problem?.type,
          answer.status,
        );
      }
      return {
        status: answer.status,
        headers: answer.headers,
        body: (opts.raw ? answer.body : parseJson(answer.body, url)) as T,
      };
    }
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  /** Throws once the order was abandoned (closed), so nothing more is sent or published for it. */
  ensureOpen(): void {
    if (this.closed) throw new CaUnavailableError('the ACME order was abandoned');
  }

  /**
   * GET rather than HEAD (RFC 8555 allows both; GET answers 204): step-ca
   * answers HEAD with a 200 without Content-Length, after which Node cannot
   * keep the connection, so every order paid for a second TLS handshake.
   */
  private async freshNonce(): Promise<string> {
    const { newNonce } = await this.directory();
    await this.send('GET', newNonce);
    if (!this.nonce) throw new CaProtocolError(`${newNonce} gave no Replay-Nonce header`);
    return this.nonce;
  }

  private async send(method: 'GET' | 'POST', url: string, body?: string, accept?: string): Promise<AcmeAnswer<string>> {
    this.ensureOpen();
    const answer = await caRequest(this.agent, method, url, body, accept);
    const nonce = answer.headers['replay-nonce'];
    if (typeof nonce === 'string' && nonce) this.nonce = nonce;
    return answer;
  }
}

function parseJson(text: string, url: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CaProtocolError(`${url} did not answer JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
}

function asProblem(text: string): { type?: string; detail?: string } | undefined {
  try {
    const doc = JSON.parse(text) as { type?: unknown; detail?: unknown };
    return {
      ...(typeof doc.type === 'string' ? { type: doc.type } : {}),
      ...(typeof doc.detail === 'string' ? { detail: doc.detail } : {}),
    };
  } catch {
    return undefined;
  }
}
