/**
 * Certificate facts on Node's built-in X509Certificate: parsing PEM bundles,
 * names, validity, key/certificate match, and the entry to path validation
 * to the pinned roots. Nothing here trusts the system store.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { fingerprintOfDer } from './fingerprint.js';
import { subjectText } from './subject.js';
import { validityOf } from './validity.js';

// The chain check lives in path.ts (with cert-rules, name-constraints and
// ca-profile); these names stay importable from here.
export { verifyChain, issuedBy } from './path.js';
export { mayIssueProblem } from './cert-rules.js';
export { validityOf } from './validity.js';
export { subjectText };

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function splitPem(bundle: string): string[] {
  return (bundle.match(PEM_BLOCK) ?? []).map((b) => `${b.trim()}\n`);
}

/**
 * Parsed certificates by their PEM: an X509Certificate never changes, and a
 * pass over many certificates reads each set and root several times (store
 * upkeep, the decision, the record). Bounded: a long-running process keeps
 * at most this many.
 */
const PARSED = new Map<string, X509Certificate>();
const PARSED_MAX = 256;

export function parseCert(pem: string): X509Certificate {
  let cert = PARSED.get(pem);
  if (!cert) {
    cert = new X509Certificate(pem);
    if (PARSED.size >= PARSED_MAX) PARSED.delete(PARSED.keys().next().value as string);
    PARSED.set(pem, cert);
  }
  return cert;
}

export function parseCerts(bundle: string): X509Certificate[] {
  return splitPem(bundle).map(parseCert);
}

export function toPem(cert: X509Certificate): string {
  return cert.toString().trim() + '\n';
}

export function certFingerprint(cert: X509Certificate): string {
  return fingerprintOfDer(cert.raw);
}

export interface CertSummary {
  serial: string;
  subject: string;
  issuer: string;
  names: string[];
  notBefore: Date;
  notAfter: Date;
}

export function summarize(cert: X509Certificate): CertSummary {
  return {
    serial: cert.serialNumber.toLowerCase(),
    subject: subjectText(cert),
    issuer: (cert.issuer ?? '').replace(/\n/g, ', '),
    names: certNames(cert),
    notBefore: validityOf(cert).notBefore,
    notAfter: validityOf(cert).notAfter,
  };
}

/** DNS names and IP addresses from the subjectAltName extension, lower case. */
export function certNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  const names: string[] = [];
  for (const part of san.split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (m?.[2]) names.push(m[1] === 'IP Address' ? normalizeIp(m[2]) : m[2].toLowerCase());
  }
  return names;
}

function normalizeIp(ip: string): string {
  // Node prints IPv6 SANs fully expanded; compare in the canonical URL form.
  return isIP(ip) === 6 ? new URL(`http://[${ip}]`).hostname.replace(/^\[|\]$/g, '') : ip;
}

export function normalizeIdentifier(name: string): string {
  return isIP(name) ? normalizeIp(name) : name.toLowerCase().replace(/\.$/, '');
}

/** Names the configuration asks for that the certificate lacks. */
export function missingNames(cert: X509Certificate, wanted: string[]): string[] {
  const have = new Set(certNames(cert));
  return wanted.map(normalizeIdentifier).filter((n) => !have.has(n));
}

/** Names the certificate carries that the configuration does not ask for. */
export function extraNames(cert: X509Certificate, wanted: string[]): string[] {
  const want = new Set(wanted.map(normalizeIdentifier));
  return certNames(cert).filter((n) => !want.has(n));
}

export function keyMatchesCert(keyPem: string, cert: X509Certificate): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
