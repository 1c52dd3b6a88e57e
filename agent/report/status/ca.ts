/**
 * The CA section of `status`: the pins, the saved trust and whether it
 * still holds, roots the CA serves that are not trusted, and the last re-pin.
 */
import type { X509Certificate } from 'node:crypto';
import type { Config } from '../../config/config.js';
import { certFingerprint } from '../../pki/x509.js';
import type { AgentState } from '../../store/state.js';
import { loadRepins, type TrustBundle } from '../../trust/file.js';
import type { Problems, StatusReport } from './report.js';

export function caSection(
  config: Config,
  state: AgentState,
  trust: TrustBundle | undefined,
  roots: X509Certificate[],
): Problems & { ca: StatusReport['ca'] } {
  const critical: string[] = [];
  const warning: string[] = [];
  const trustState = state.trust && !state.trust.ok ? 'broken' : trust ? 'ok' : 'not-bootstrapped';
  const offered = state.trust?.offeredFingerprints ?? [];
  if (trustState === 'broken') {
    const offeredText = offered.length ? ` The CA now offers root ${offered.join(', ')};` : '';
    critical.push(
      `trust broken: ${state.trust?.detail ?? 'the CA no longer chains to the pinned root'}.${offeredText} if the CA was recreated on purpose, run: cert-agent enroll --fingerprint <new fingerprint>`,
    );
  } else if (trustState === 'not-bootstrapped') {
    warning.push('the CA root is not pinned yet (no trust.json): run cert-agent enroll or cert-agent renew');
  }
  const refusedRoots = trust?.refused ?? [];
  for (const r of refusedRoots) {
    const pins = [...config.ca.fingerprints, r.fingerprint];
    const pin = `cert-agent enroll --fingerprint ${pins.join(',')} (or ca.fingerprint: [${pins.join(', ')}])`;
    warning.push(
      r.root
        ? `the CA serves root ${r.fingerprint} (${r.subject}), not trusted: ${r.reason}. If it is your new root: ${pin}`
        : `the CA's /roots lists ${r.fingerprint} (${r.subject}), not trusted: ${r.reason}; ask the CA's operator why`,
    );
  }
  const ca = {
    url: config.ca.url,
    directory: config.ca.directory,
    pinnedFingerprints: config.ca.fingerprints,
    trustedFingerprints: roots.map(certFingerprint),
    trust: trustState,
    trustDetail: state.trust?.detail ?? null,
    offeredFingerprints: offered,
    untrustedRoots: refusedRoots.map((r) => ({ fingerprint: r.fingerprint, subject: r.subject, reason: r.reason })),
    lastRepin: loadRepins(config.stateDir).at(-1) ?? null,
  } satisfies StatusReport['ca'];
  return { ca, critical, warning };
}
