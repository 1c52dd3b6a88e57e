/**
 * step-ca's own renewal API, the other way to renew a certificate it issued
 * (ACME-issued ones included): `POST /1.0/rekey` with a CSR for a new key,
 * or `POST /1.0/renew` keeping the key, each over mutual TLS with the
 * current certificate and key as the client certificate. No challenge, so
 * no port 80: the certificate itself is the authorization.
 *
 * The connection is OpenSSL's decision like every other: the pinned roots
 * are its only anchors, the host name is checked, and the client key is
 * handed to OpenSSL in this process, never sent or written anywhere. What
 * comes back is only parsed here; the caller checks it (names, key, chain to
 * the pin) exactly as an ACME chain before anything is installed.
 *
 * Every failure is one of three: the CA's certificate does not verify
 * (TrustError, from the connection), the CA was not reached at all
 * (CaUnavailableError), or the CA would not renew this way
 * (RenewalRefusedError: an HTTP error, not a step-ca, a TLS alert against
 * the client certificate, an answer that is not a certificate chain). Only
 * the last one lets a caller fall back to ACME: the other two would meet the
 * same CA there.
 */
import { CaUnavailableError, RenewalRefusedError, TrustError, describeError, oneLine } from '../lib/errors.js';
import { errorCode, sendHttps, type HttpAnswer } from '../lib/https.js';
import { createCsr } from '../pki/der.js';

export interface ApiRenewal {
  /** The CA's base URL (config `ca.url`): the API lives at /1.0/… under it. */
  caUrl: string;
  /** The pinned roots, OpenSSL's only anchors for the CA's certificate. */
  roots: string[];
  /** The certificate being renewed (leaf first, then its intermediates) and its key. */
  client: { certPem: string; keyPem: string };
  timeoutMs: number;
}

export interface Rekey extends ApiRenewal {
  /** The new key, and the names the CSR asks for (the certificate's own). */
  newKeyPem: string;
  domains: string[];
}

/** The answer: the new leaf followed by its intermediates. */
export interface ApiIssued {
  fullchainPem: string;
}

/** A CA's answer is a few kilobytes; more is not a certificate chain. */
const MAX_ANSWER_BYTES = 256 * 1024;

/** Codes under which the CA was never reached: ACME would not reach it either. */
const NOT_REACHED = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNABORTED',
  'ENETDOWN',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'EAI_FAIL',
  'EAI_NONAME',
]);

/** TLS alerts by which a server refuses the client certificate it was shown. */
const CERTIFICATE_ALERT = /CERTIFICATE|UNKNOWN_CA|ACCESS_DENIED/;

/** A new certificate for a new key, with the current certificate's names. */
export async function rekey(req: Rekey): Promise<ApiIssued> {
  const csr = createCsr(req.domains, req.newKeyPem).toString('base64');
  const csrPem = `-----BEGIN CERTIFICATE REQUEST-----\n${csr.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE REQUEST-----\n`;
  return post(req, 'rekey', JSON.stringify({ csr: csrPem }));
}

/** A new certificate for the same key (doctor's probe: one request, the answer is only parsed). */
export async function renew(req: ApiRenewal): Promise<ApiIssued> {
  return post(req, 'renew', '');
}

async function post(req: ApiRenewal, what: 'rekey' | 'renew', body: string): Promise<ApiIssued> {
  const url = `${req.caUrl.replace(/\/+$/, '')}/1.0/${what}`;
  let answer: HttpAnswer;
  try {
    answer = await sendHttps(url, {
      method: 'POST',
      // TLS 1.3 only: the client certificate (which names this container) goes encrypted, never in the clear.
      tls: {
        ca: req.roots,
        rejectUnauthorized: true,
        cert: req.client.certPem,
        key: req.client.keyPem,
        minVersion: 'TLSv1.3',
      },
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
      timeoutMs: req.timeoutMs,
      maxBytes: MAX_ANSWER_BYTES,
    });
  } catch (err) {
    throw classify(err, what);
  }
  return parseAnswer(answer, what);
}

/** A failure to get any answer: the CA's certificate, the CA not reached, or the CA refusing us in TLS. */
function classify(err: unknown, what: string): Error {
  if (err instanceof TrustError) return err;
  if (err instanceof CaUnavailableError) {
    const code = errorCode(err.cause);
    const name = (err.cause as { name?: unknown } | undefined)?.name;
    if ((code && NOT_REACHED.has(code)) || name === 'TimeoutError') return err;
    const alert = code?.startsWith('ERR_SSL_') && code.includes('ALERT');
    if (alert && CERTIFICATE_ALERT.test(code ?? ''))
      return new RenewalRefusedError(
        `the CA refused the certificate as a TLS client certificate for /1.0/${what} (${code})`,
      );
    if (alert) return new RenewalRefusedError(`the TLS handshake for /1.0/${what} failed (${code})`);
    // OpenSSL's own refusal of the handshake (e.g. no TLS 1.3 at the CA): the CA was reached.
    if (code === 'EPROTO')
      return new RenewalRefusedError(
        `the TLS handshake for /1.0/${what} failed (${oneLine(describeError(err.cause))})`,
      );
    return new RenewalRefusedError(`the CA broke off /1.0/${what} (${oneLine(describeError(err))})`);
  }
  return new RenewalRefusedError(`/1.0/${what} failed: ${oneLine(describeError(err))}`);
}

/** step-ca answers 201 with `{crt, ca, certChain}`; an error with `{status, message}`. */
function parseAnswer(answer: HttpAnswer, what: string): ApiIssued {
  const json = parseJson(answer.body);
  if (answer.status !== 200 && answer.status !== 201) {
    const message = typeof json?.message === 'string' ? `: ${oneLine(json.message, 200)}` : '';
    const hint = answer.status === 404 ? ' (the CA has no such API: not a step-ca?)' : '';
    throw new RenewalRefusedError(`the CA answered /1.0/${what} with HTTP ${answer.status}${message}${hint}`);
  }
  const chain = Array.isArray(json?.certChain) ? json.certChain : [json?.crt, json?.ca];
  if (!chain.length || !chain.every((pem): pem is string => typeof pem === 'string' && isCertificatePem(pem))) {
    throw new RenewalRefusedError(`the CA's answer to /1.0/${what} holds no certificate chain`);
  }
  return { fullchainPem: chain.map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`)).join('') };
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isCertificatePem(pem: string): boolean {
  return /^\s*-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*$/.test(pem);
}
