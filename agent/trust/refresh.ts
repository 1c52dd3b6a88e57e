/**
 * Trust refresh: fetch /roots over the already verified connection and take
 * in what a root rotation announces, without an operator, but only what the
 * pins allow: a served root that matches a configured pin, or a self-signed
 * CA that a root already trusted has cross-signed (the cross-certificate
 * served alongside it in /roots) without limits the new root does not carry
 * itself (cross-limits.ts). Anything else the CA serves is logged and
 * kept for `status` to report, never trusted: a verified connection proves
 * who sent the list, not that every entry in it deserves to be a root. At
 * most once an hour; a failure here never fails a renewal.
 */
import { X509Certificate } from 'node:crypto';
import type { Config } from '../config/config.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { crossLimitsProblem } from './cross-limits.js';
import { fetchRoots } from './pin.js';
import {
  describeRefused,
  isSelfSignedCa,
  limitedReason,
  loadTrust,
  rootsPem,
  saveTrust,
  vouchesFor,
  type RefusedRoot,
  type TrustedRoot,
} from './file.js';
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
    const { added, refused } = admit(served, bundle.roots, bundle.pins, now);
    bundle.roots.push(...added);
    bundle.refreshedAt = now.toISOString();
    bundle.refused = refused;
    saveTrust(config.stateDir, bundle);
    const fingerprints = added.map((r) => r.fingerprint);
    if (fingerprints.length) {
      log.info({ event: 'trust_roots_added', fingerprints }, 'new roots that a pin or a trusted root vouches for');
    }
    for (const r of refused) {
      log.warn(
        { event: 'trust_root_refused', fingerprint: r.fingerprint, subject: r.subject, reason: r.reason },
        'the CA serves a root that is not trusted',
      );
    }
    return fingerprints;
  } catch (err) {
    log.warn({ event: 'trust_refresh_failed', error: describeError(err) }, 'could not refresh the CA roots');
    return [];
  }
}

/**
 * Splits what /roots served into roots to add and certificates to refuse.
 * Rounds, so that a root vouched for by a root added in this same refresh
 * (two rotations in a row) comes in too. A cross-certificate that vouches for
 * a trusted root is evidence, not a refusal.
 */
function admit(
  served: X509Certificate[],
  roots: TrustedRoot[],
  pins: string[],
  now: Date,
): {
  added: TrustedRoot[];
  refused: RefusedRoot[];
} {
  const trusted = new Map(roots.map((r) => [r.fingerprint, new X509Certificate(r.pem)]));
  const added: TrustedRoot[] = [];
  const limited = new Map<string, string>();
  for (let progress = true; progress;) {
    progress = false;
    for (const cert of served) {
      const fingerprint = certFingerprint(cert);
      if (trusted.has(fingerprint)) continue;
      let entry: TrustedRoot | undefined;
      if (pins.includes(fingerprint)) {
        entry = { fingerprint, pem: toPem(cert) };
      } else if (isSelfSignedCa(cert)) {
        const anchors = [...trusted.values()];
        const crosses = served.filter((x) => x !== cert && withinValidity(x, now) && vouchesFor(x, cert, anchors));
        // A cross-certificate that limits what the root does not: adopting the root would lift those limits.
        const cross = crosses.find((x) => crossLimitsProblem(x, cert, anchors) === undefined);
        if (cross) entry = { fingerprint, pem: toPem(cert), crossPem: toPem(cross) };
        else if (crosses[0]) limited.set(fingerprint, limitedReason(crossLimitsProblem(crosses[0], cert, anchors)!));
      }
      if (entry) {
        added.push(entry);
        trusted.set(fingerprint, cert);
        progress = true;
      }
    }
  }
  const anchors = [...trusted.values()];
  const refused = served
    .filter((c) => !trusted.has(certFingerprint(c)))
    .filter((c) => !anchors.some((root) => vouchesFor(c, root, anchors)))
    .map((c) =>
      describeRefused(
        c,
        limited.get(certFingerprint(c)) ??
          (isSelfSignedCa(c)
            ? 'a root that matches no pin and is not cross-signed by a trusted root'
            : 'not a self-signed CA certificate, so never a root'),
      ),
    );
  return { added, refused };
}

function withinValidity(cert: X509Certificate, now: Date): boolean {
  return now >= new Date(cert.validFrom) && now <= new Date(cert.validTo);
}
