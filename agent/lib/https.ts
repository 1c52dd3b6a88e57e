/**
 * The agent's own HTTPS requests to the CA (everything except ACME, which
 * the ACME transport sends). Built on node:https rather than undici: for one GET of a
 * few kilobytes it does the same, and keeps half a megabyte out of the
 * single-file bundle every container loads. Each request names its trust
 * explicitly: the pinned roots as the only anchors, or — for the single first-contact request of bootstrap —
 * no verification at all, whose answer is then checked against the pin.
 * Every verified connection is OpenSSL's decision: `ca` holds the pinned
 * roots (it replaces Node's own store), `rejectUnauthorized` is on and the
 * host name is checked by Node's default; the agent adds no check of its own.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request, type Agent } from 'node:https';
import { AgentError, CaProtocolError, CaUnavailableError, TrustError, describeError } from './errors.js';

export type Trust = { roots: string[] } | { insecureFirstContact: true };

export interface FetchOptions {
  trust: Trust;
  timeoutMs?: number;
  /** Answers larger than this are refused: a CA never sends megabytes of roots. */
  maxBytes?: number;
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface SendOptions {
  method: 'GET' | 'HEAD' | 'POST';
  /** Connection pool (ACME keeps one per pass); without it, `tls` applies to a one-off connection. */
  agent?: Agent;
  /** `cert` and `key`: a client certificate (mutual TLS); the key stays in this process. */
  tls?: { ca?: string[]; rejectUnauthorized: boolean; cert?: string; key?: string; minVersion?: 'TLSv1.3' };
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
}

/**
 * Every certificate verification error code Node reports for OpenSSL's
 * verdict (X509_V_ERR_*; those it has no name for are UNSPECIFIED), and
 * Node's own host name check: each means the CA's certificate was refused,
 * never that the CA could not be reached.
 */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  // Name constraints, a digest or key too weak, and every other failure Node has no name for.
  'UNSPECIFIED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function httpsGet(url: string, opts: FetchOptions): Promise<HttpAnswer> {
  // OpenSSL verifies with the pinned roots as its only CA store. First
  // contact verifies nothing; an empty `ca` spares Node 20 loading its own roots.
  const tls =
    'roots' in opts.trust ? { ca: opts.trust.roots, rejectUnauthorized: true } : { ca: [], rejectUnauthorized: false };
  return sendHttps(url, {
    method: 'GET',
    tls,
    headers: { accept: 'application/json' },
    timeoutMs: opts.timeoutMs ?? 10_000,
    maxBytes: opts.maxBytes ?? 1024 * 1024,
  });
}

/**
 * One HTTPS exchange with the CA, bounded in size and in time: a per-socket
 * idle timeout and a whole-request deadline, so a server trickling bytes
 * cannot hold a pass forever. Failures come out classified (see below).
 */
export function sendHttps(url: string, opts: SendOptions): Promise<HttpAnswer> {
  const { timeoutMs, maxBytes } = opts;
  return new Promise<HttpAnswer>((resolve, reject) => {
    const fail = (err: unknown) => reject(classifyNetworkError(err, url));
    const req = request(
      url,
      {
        method: opts.method,
        ...(opts.agent ? { agent: opts.agent } : { agent: false, ...opts.tls }),
        timeout: timeoutMs,
        headers: opts.headers ?? {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes)
            req.destroy(new CaProtocolError(`${url} answered with more than ${maxBytes} bytes; refusing it`));
          else chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', fail);
      },
    );
    const timeout = (what: string) =>
      req.destroy(Object.assign(new Error(`no ${what} within ${timeoutMs}ms`), { name: 'TimeoutError' }));
    const deadline = setTimeout(() => timeout('complete answer'), timeoutMs);
    req.on('timeout', () => timeout('answer'));
    req.on('error', fail);
    req.on('close', () => clearTimeout(deadline));
    req.end(opts.body);
  });
}

/**
 * Turns a low-level failure into an operator-facing error: a TLS verification
 * failure means the CA is not the one pinned (TrustError); anything else that
 * prevented an answer means the CA is unavailable.
 */
export function classifyNetworkError(err: unknown, url: string): AgentError {
  if (err instanceof AgentError) return err;
  const code = errorCode(err);
  const detail = describeError(deepest(err));
  if (code && TLS_VERIFY_CODES.has(code)) {
    return new TrustError(
      `TLS certificate of ${originOf(url)} does not verify against the pinned CA root (${code}: ${detail}); if the CA was recreated, re-enroll with its new fingerprint`,
    );
  }
  if (code === 'ETIMEDOUT' || code === 'ECONNABORTED' || (err as Error)?.name === 'TimeoutError') {
    return new CaUnavailableError(`${originOf(url)} did not answer in time (${code ?? 'timeout'})`, { cause: err });
  }
  return new CaUnavailableError(`cannot reach ${originOf(url)}: ${code ? `${code}: ` : ''}${detail}`, { cause: err });
}

export function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (TLS_VERIFY_CODES.has(code) || !code.startsWith('ERR_BAD'))) return code;
  }
  return undefined;
}

function deepest(err: unknown): unknown {
  let e = err;
  for (let i = 0; i < 5 && (e as { cause?: unknown })?.cause; i++) e = (e as { cause: unknown }).cause;
  return e;
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
