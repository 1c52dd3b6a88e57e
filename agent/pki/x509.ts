/**
 * Certificate facts and checks on Node's built-in X509Certificate: parsing
 * PEM bundles, names, validity, key/certificate match and path validation to
 * the pinned roots. Nothing here trusts the system store.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from './ip.js';
import { fingerprintOfDer } from './fingerprint.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function splitPem(bundle: string): string[] {
  return (bundle.match(PEM_BLOCK) ?? []).map((b) => `${b.trim()}\n`);
}

export function parseCerts(bundle: string): X509Certificate[] {
  return splitPem(bundle).map((pem) => new X509Certificate(pem));
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
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    names: certNames(cert),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
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

export function keyMatchesCert(keyPem: string, cert: X509Certificate): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/**
 * Builds a path leaf → intermediates → one of `roots` and checks each
 * signature and validity period at `now`. Returns the root it ended at, or a
 * reason it failed, phrased for an operator.
 */
export function verifyChain(leaf: X509Certificate, intermediates: X509Certificate[], roots: X509Certificate[], now: Date): { root: X509Certificate } | { problem: string } {
  let current = leaf;
  const pool = [...intermediates];
  for (let depth = 0; depth < 8; depth++) {
    const window = validityProblem(current, now);
    if (window) return { problem: window };
    const root = roots.find((r) => issuedBy(current, r));
    if (root) {
      const rootWindow = validityProblem(root, now);
      return rootWindow ? { problem: rootWindow } : { root };
    }
    const idx = pool.findIndex((c) => c.ca && issuedBy(current, c));
    if (idx < 0) return { problem: `no issuer found for ${current.subject.replace(/\n/g, ', ')} among the chain and the pinned roots` };
    current = pool.splice(idx, 1)[0] as X509Certificate;
  }
  return { problem: 'certificate chain is longer than 8' };
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  if (!cert.checkIssued(issuer)) return false;
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function validityProblem(cert: X509Certificate, now: Date): string | undefined {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  const who = cert.subject.replace(/\n/g, ', ');
  // A fresh certificate that is "not yet valid" or "expired" usually means this
  // machine's clock is off, not the CA: say which clock the verdict used.
  if (now < from) return `${who} is not valid before ${from.toISOString()} (this machine's clock says ${now.toISOString()}; check it)`;
  if (now > to) return `${who} expired at ${to.toISOString()} (this machine's clock says ${now.toISOString()})`;
  return undefined;
}
