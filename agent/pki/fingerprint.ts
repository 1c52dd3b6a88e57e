/**
 * Root pins: lowercase hex SHA-256 over the certificate's DER, the same value
 * `step certificate fingerprint` and `step ca bootstrap` use. Operators paste
 * them from many tools, so colons, spaces and upper case are accepted; any
 * other deviation is refused rather than guessed at.
 */
import { createHash } from 'node:crypto';

const HEX64 = /^[0-9a-f]{64}$/;

/** Normalises a pin; returns undefined when it is not a SHA-256 fingerprint. */
export function parseFingerprint(input: string): string | undefined {
  const compact = input
    .trim()
    .toLowerCase()
    .replace(/^sha256[:=]/, '')
    .replace(/[:\s]/g, '');
  return HEX64.test(compact) ? compact : undefined;
}

/** Why a pin is invalid, phrased for a config or flag error. */
export function fingerprintProblem(input: string): string | undefined {
  if (parseFingerprint(input)) return undefined;
  const compact = input.trim().replace(/[:\s]/g, '');
  if (/^[0-9a-fA-F]+$/.test(compact)) {
    return `has ${compact.length} hex digits; a SHA-256 fingerprint has 64 (colons allowed)`;
  }
  return 'is not a SHA-256 fingerprint: expected 64 hex digits (colons allowed)';
}

export function fingerprintOfDer(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}
