/**
 * Trust refresh (spec §6): fetch /roots over the already verified connection
 * and add roots the CA now serves — authenticated by the roots we trust, so a
 * planned rotation announced by the CA flows in without an operator. At most
 * once an hour; a failure here never fails a renewal.
 */
import type { Config } from '../config/config.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { fetchRoots } from './pin.js';
import { loadTrust, rootsPem, saveTrust } from './file.js';
import { certFingerprint, toPem } from '../pki/x509.js';

const REFRESH_EVERY_MS = 60 * 60_000;

export async function refreshTrust(config: Config, now: Date, log: Logger, force = false): Promise<string[]> {
  if (config.ca.rootFile) return [];
  const bundle = loadTrust(config.stateDir);
  if (!bundle) return [];
  const last = bundle.refreshedAt ?? bundle.bootstrappedAt;
  if (!force && now.getTime() - new Date(last).getTime() < REFRESH_EVERY_MS) return [];
  try {
    const served = await fetchRoots(config.ca.url, { roots: rootsPem(bundle) });
    const known = new Set(bundle.roots.map((r) => r.fingerprint));
    const added = served.filter((c) => !known.has(certFingerprint(c)));
    for (const cert of added) bundle.roots.push({ fingerprint: certFingerprint(cert), pem: toPem(cert) });
    bundle.refreshedAt = now.toISOString();
    saveTrust(config.stateDir, bundle);
    const fingerprints = added.map(certFingerprint);
    if (fingerprints.length) log.info({ event: 'trust_roots_added', fingerprints }, 'the CA serves new roots; trusting them (authenticated by the pinned root)');
    return fingerprints;
  } catch (err) {
    log.warn({ event: 'trust_refresh_failed', error: describeError(err) }, 'could not refresh the CA roots');
    return [];
  }
}
