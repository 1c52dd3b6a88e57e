/**
 * Root pins: lowercase hex SHA-256 over the certificate's DER, the same value
 * `step certificate fingerprint` and `step ca bootstrap` use. Operators paste
 * them from many tools, so each tool's own output is accepted as printed:
 * `step certificate fingerprint` (hex), `openssl x509 -fingerprint -sha256
 * -noout` ("sha256 Fingerprint=AA:BB:..."; OpenSSL 1.1 writes "SHA256"),
 * `openssl x509 -outform der | sha256sum` ("hex  -"), with colons, spaces and
 * upper case; any other deviation is refused rather than guessed at.
 */
import { createHash } from 'node:crypto';

const HEX64 = /^[0-9a-f]{64}$/;
/** What the tools put around the digits: openssl's label, a sha256: prefix, sha256sum's " -" for stdin. */
const OPENSSL_LABEL = /^sha-?256 fingerprint=/i;
const PREFIX = /^sha-?256[:=]/;
const SHA256SUM_STDIN = /^([0-9a-f]{64}) [ *]-$/;

/** Normalises a pin; returns undefined when it is not a SHA-256 fingerprint. */
export function parseFingerprint(input: string): string | undefined {
  const text = input.trim().toLowerCase();
  const sum = SHA256SUM_STDIN.exec(text);
  if (sum) return sum[1];
  const compact = text.replace(OPENSSL_LABEL, '').replace(PREFIX, '').replace(/[:\s]/g, '');
  return HEX64.test(compact) ? compact : undefined;
}

/** Why a pin is invalid, phrased for a config or flag error. */
export function fingerprintProblem(input: string): string | undefined {
  if (parseFingerprint(input)) return undefined;
  const compact = input.trim().replace(OPENSSL_LABEL, '').replace(/[:\s]/g, '');
  if (/^[0-9a-fA-F]+$/.test(compact)) {
    return `has ${compact.length} hex digits; a SHA-256 fingerprint has 64 (colons allowed)`;
  }
  return (
    'is not a SHA-256 fingerprint: expected 64 hex digits (colons allowed), as printed by ' +
    '`step certificate fingerprint`, `openssl x509 -fingerprint -sha256 -noout` or `sha256sum` of the DER'
  );
}

export function fingerprintOfDer(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}
