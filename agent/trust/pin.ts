/**
 * Trust in the CA, and nothing else. First contact fetches /roots
 * without verification, keeps only a root whose SHA-256 equals a pin, then
 * proves that the CA's own TLS certificate chains to that root by fetching
 * /roots again with the root as the only anchor. From then on every CA
 * connection (ACME included) trusts exactly the roots saved here.
 */
import { type X509Certificate } from 'node:crypto';
import { CaProtocolError, ConfigError, TrustError, describeError } from '../lib/errors.js';
import { httpsGet, type Trust } from '../lib/https.js';
import { certFingerprint, parseCerts, toPem } from '../pki/x509.js';
import { readIfExists } from '../lib/fs.js';
import type { TrustBundle } from './file.js';

/** Fetches and parses /roots. Status 201 is step-ca's normal answer, 200 is accepted too. */
export async function fetchRoots(caUrl: string, trust: Trust): Promise<X509Certificate[]> {
  const url = `${caUrl}/roots`;
  const answer = await httpsGet(url, { trust });
  if (answer.status !== 200 && answer.status !== 201) {
    throw new CaProtocolError(
      `${url} answered HTTP ${answer.status}; expected 201 with {"crts": [...]} (is this a step-ca?)`,
      undefined,
      answer.status,
    );
  }
  let crts: unknown;
  try {
    crts = (JSON.parse(answer.body) as { crts?: unknown }).crts;
  } catch {
    throw new CaProtocolError(`${url} did not answer JSON; expected {"crts": [PEM, ...]}`);
  }
  if (!Array.isArray(crts) || crts.length === 0 || !crts.every((c) => typeof c === 'string')) {
    throw new CaProtocolError(`${url} answered without a "crts" list of PEM certificates`);
  }
  try {
    return crts.flatMap((pem: string) => parseCerts(pem));
  } catch (err) {
    throw new CaProtocolError(`${url} answered a certificate that does not parse: ${describeError(err)}`);
  }
}

/** Pins the CA: returns the served roots that match a pin, after proving the CA's TLS chains to them. */
export async function bootstrapTrust(caUrl: string, pins: string[], now: Date): Promise<TrustBundle> {
  const offered = await fetchRoots(caUrl, { insecureFirstContact: true });
  const pinned = offered.filter((c) => pins.includes(certFingerprint(c)));
  if (pinned.length === 0) {
    const offeredFps = offered.map(certFingerprint);
    throw new TrustError(
      `fingerprint mismatch: expected ${pins.join(' or ')}, the CA at ${caUrl} offered ${offeredFps.join(', ')}; nothing was trusted`,
      offeredFps,
    );
  }
  const roots = pinned.map(toPem);
  // The same request, now verified: succeeds only if the CA's TLS certificate
  // chains to a pinned root, which rules out a man in the middle that merely
  // repeats the real /roots answer.
  const again = await fetchRoots(caUrl, { roots });
  if (!again.some((c) => pins.includes(certFingerprint(c)))) {
    throw new TrustError(
      `the CA at ${caUrl} no longer offers the pinned root over a verified connection; nothing was trusted`,
    );
  }
  return {
    pins: [...pins],
    roots: pinned.map((c) => ({ fingerprint: certFingerprint(c), pem: toPem(c) })),
    bootstrappedAt: now.toISOString(),
  };
}

/** For CAs without /roots: the operator supplies the root file (checked against pins when given). */
export function trustFromRootFile(rootFile: string, pins: string[], now: Date): TrustBundle {
  const text = readIfExists(rootFile);
  if (text === undefined) throw new ConfigError('ca.rootFile', `${rootFile} does not exist`);
  let certs: X509Certificate[];
  try {
    certs = parseCerts(text);
  } catch (err) {
    throw new ConfigError('ca.rootFile', `${rootFile} holds a certificate that does not parse: ${describeError(err)}`);
  }
  if (certs.length === 0) throw new ConfigError('ca.rootFile', `${rootFile} holds no PEM certificate`);
  const chosen = pins.length ? certs.filter((c) => pins.includes(certFingerprint(c))) : certs;
  if (chosen.length === 0) {
    throw new TrustError(
      `fingerprint mismatch: expected ${pins.join(' or ')}, ${rootFile} holds ${certs.map(certFingerprint).join(', ')}`,
    );
  }
  return {
    pins: [...pins],
    roots: chosen.map((c) => ({ fingerprint: certFingerprint(c), pem: toPem(c) })),
    bootstrappedAt: now.toISOString(),
  };
}
