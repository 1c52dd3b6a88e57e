/**
 * `doctor`: the installed set judged by the same assessment as the renewal
 * decision, the store and `status` (key, chain, names), and the published
 * names consumers read.
 */
import { X509Certificate } from 'node:crypto';
import { StoreError, describeError } from '../../lib/errors.js';
import { assessSet, type FindingCode } from '../../pki/assess.js';
import { certFingerprint } from '../../pki/x509.js';
import { ownershipForReading } from '../../store/ownership.js';
import { inspectPublishedNames } from '../../store/published.js';
import { CertStore, type LiveSet } from '../../store/sets.js';
import { loadTrust } from '../../trust/file.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';
import type { Config } from '../../config/config.js';

/** The live set, or undefined when there is none or it cannot be read (the certificate line says why). */
export function liveSetQuietly(config: Config): LiveSet | undefined {
  try {
    return new CertStore(config.certificate.dir, ownershipForReading(config)).live();
  } catch {
    return undefined;
  }
}

export function checkCertificate({ config, now }: DoctorContext): Diagnosis[] {
  let live;
  try {
    live = new CertStore(config.certificate.dir, ownershipForReading(config)).live();
  } catch (err) {
    if (err instanceof StoreError) return [diagnosis('PROBLEM', 'certificate', describeError(err))];
    throw err;
  }
  if (!live) {
    const none = `no certificate installed in ${config.certificate.dir}: run cert-agent renew`;
    return [diagnosis('PROBLEM', 'certificate', none)];
  }
  return [...assessLive(config, live, now), ...checkPublished(config)];
}

/** One line per kind of finding: the key, the chain, the names. */
function assessLive(config: Config, live: LiveSet, now: Date): Diagnosis[] {
  const lines: Diagnosis[] = [];
  const serial = live.cert.serialNumber.toLowerCase();
  const roots = (loadTrust(config.stateDir)?.roots ?? []).map((r) => new X509Certificate(r.pem));
  const { findings, root } = assessSet(live, { domains: config.certificate.domains, roots, now });
  const found = (...codes: FindingCode[]) => findings.find((f) => codes.includes(f.code));
  const key = found('key-mismatch');
  if (key)
    lines.push(
      diagnosis('PROBLEM', 'key', `${key.message}: run cert-agent renew --force to install a new matching set`),
    );
  else lines.push(diagnosis('ok', 'key', `key.pem matches cert.pem (serial ${serial})`));
  const chain = found('placeholder', 'chain', 'expired', 'not-yet-valid');
  if (chain?.code === 'placeholder') lines.push(diagnosis('PROBLEM', 'chain', `${chain.message} (see the CA line)`));
  else if (chain) lines.push(diagnosis('PROBLEM', 'chain', `${chain.message}: run cert-agent renew --force`));
  else if (root) {
    const verifies = `cert.pem + chain.pem verify to the pinned root ${certFingerprint(root)}`;
    lines.push(diagnosis('ok', 'chain', verifies));
  }
  const names = found('names-missing');
  if (names) lines.push(diagnosis('PROBLEM', 'names', `${names.message}: run cert-agent renew --force`));
  return lines;
}

function checkPublished(config: Config): Diagnosis[] {
  const published = inspectPublishedNames(config.certificate.dir);
  const lines = published
    .filter((p) => p.state !== 'ok')
    .map((p) => {
      const keep = p.state === 'regular-file' ? ` and keeps the file as ${p.name}.before-cert-agent` : '';
      const fix = p.state === 'dangling' ? 'it installs a complete set' : `it restores the link${keep}`;
      return diagnosis(
        'PROBLEM',
        'published name',
        `${p.detail}: run cert-agent renew (${fix}), or let the next check do it`,
      );
    });
  if (published.every((p) => p.state === 'ok')) {
    const linked = `${published.map((p) => p.name).join(', ')} link to the live set`;
    lines.push(diagnosis('ok', 'published names', linked));
  }
  return lines;
}
