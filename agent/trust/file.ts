/**
 * The pinned roots on disk (trust.json in the state directory). Reading it
 * needs no network: `status` and `doctor` use this module alone.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { readIfExists, writeFileAtomic } from '../lib/fs.js';
import { certFingerprint } from '../pki/x509.js';

export interface TrustBundle {
  /** The pins this bundle was bootstrapped from; a change of pins means bootstrap again. */
  pins: string[];
  roots: { fingerprint: string; pem: string }[];
  bootstrappedAt: string;
  refreshedAt?: string;
}

export const TRUST_FILE = 'trust.json';

export function rootsPem(bundle: TrustBundle): string[] {
  return bundle.roots.map((r) => r.pem);
}

export function loadTrust(stateDir: string): TrustBundle | undefined {
  const text = readIfExists(join(stateDir, TRUST_FILE));
  if (text === undefined) return undefined;
  try {
    const bundle = JSON.parse(text) as TrustBundle;
    if (!Array.isArray(bundle.pins) || !Array.isArray(bundle.roots) || bundle.roots.length === 0) return undefined;
    // Never trust what the file claims: recompute each fingerprint from the PEM.
    bundle.roots = bundle.roots.filter((r) => {
      try {
        return certFingerprint(new X509Certificate(r.pem)) === r.fingerprint;
      } catch {
        return false;
      }
    });
    return bundle.roots.length ? bundle : undefined;
  } catch {
    return undefined;
  }
}

export function saveTrust(stateDir: string, bundle: TrustBundle): void {
  writeFileAtomic(join(stateDir, TRUST_FILE), `${JSON.stringify(bundle, null, 2)}\n`, 0o644);
}

/** The saved bundle if it was made from exactly these pins (order aside). */
export function trustForPins(stateDir: string, pins: string[]): TrustBundle | undefined {
  const bundle = loadTrust(stateDir);
  if (!bundle) return undefined;
  const same = bundle.pins.length === pins.length && pins.every((p) => bundle.pins.includes(p));
  return same ? bundle : undefined;
}
