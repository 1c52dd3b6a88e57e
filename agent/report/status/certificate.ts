/**
 * The certificate section of `status`: the live set judged by the one
 * assessment (findings with what to do about them), its published names,
 * drifted key modes, an overdue renewal and the CA-outage allowance.
 */
import type { X509Certificate } from 'node:crypto';
import type { Config } from '../../config/config.js';
import { StoreError, describeError } from '../../lib/errors.js';
import { assessSet, type FindingCode } from '../../pki/assess.js';
import { summarize, validityOf } from '../../pki/x509.js';
import { allowanceThresholdMs, outageAllowance, randomForSerial } from '../../renewal/schedule.js';
import { decide, publishedNeeds } from '../../renewal/decide.js';
import type { AgentState } from '../../store/state.js';
import { findDrift } from '../../store/permissions.js';
import { inspectPublishedNames } from '../../store/published.js';
import { CertStore, type LiveSet } from '../../store/sets.js';
import type { Ownership } from '../../store/layout.js';
import { human } from '../status-text.js';
import { overdueGraceMs, type Problems, type StatusReport } from './report.js';

export interface CertificateSection extends Problems {
  live: LiveSet | undefined;
  certificate: StatusReport['certificate'];
  /** When the live certificate is due for renewal. */
  next: Date | undefined;
  allowance: StatusReport['renewal']['caOutageAllowance'];
}

/** What the operator can do about each finding of the assessment, after its message. */
const REMEDY: Partial<Record<FindingCode, string>> = {
  'key-mismatch': ' (run: cert-agent renew --force)',
  'names-missing': ' (run: cert-agent renew --force)',
  chain: ' (run: cert-agent renew --force)',
  expired: ' (run: cert-agent renew)',
};

export function certificateSection(
  config: Config,
  owner: Ownership,
  roots: X509Certificate[],
  now: Date,
  state: AgentState,
): CertificateSection {
  const none = { live: undefined, certificate: null, next: undefined, allowance: null, warning: [] };
  let live: LiveSet | undefined;
  try {
    live = new CertStore(config.certificate.dir, owner).live();
  } catch (err) {
    // A directory entry that is not the agent's own is refused, and said as such.
    if (!(err instanceof StoreError)) throw err;
    return { ...none, critical: [describeError(err)] };
  }
  if (!live)
    return { ...none, critical: [`no certificate installed in ${config.certificate.dir} (run: cert-agent renew)`] };
  return liveSection(config, owner, roots, now, state, live);
}

function liveSection(
  config: Config,
  owner: Ownership,
  roots: X509Certificate[],
  now: Date,
  state: AgentState,
  live: LiveSet,
): CertificateSection {
  const critical: string[] = [];
  const warning: string[] = [];
  const s = summarize(live.cert);
  const { notBefore, notAfter } = validityOf(live.cert);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const expired = now >= notAfter;
  const { findings } = assessSet(live, { domains: config.certificate.domains, roots, now });
  const found = (code: FindingCode) => findings.find((f) => f.code === code);
  // The same findings as the renewal decision and the store, with what the operator can do about them.
  const chainFinding = found('chain') ?? found('expired') ?? found('not-yet-valid');
  const chainProblem = live.placeholder ? 'self-signed placeholder' : (chainFinding?.problem ?? null);
  const published = inspectPublishedNames(config.certificate.dir);
  // The pass's own decision: its next moment is the renewal time reported.
  const { next } = decide({ live, findings, published: publishedNeeds(published), state, config, now });
  for (const f of findings) (f.severity === 'critical' ? critical : warning).push(f.message + (REMEDY[f.code] ?? ''));
  for (const p of published.filter((n) => n.state !== 'ok')) {
    const fix = `the next check ${p.state === 'dangling' ? 'installs a complete set' : 'restores the link'}`;
    critical.push(
      `${p.detail}: consumers reading ${p.name} fail or serve something else; ${fix} ` + '(or run: cert-agent renew)',
    );
  }
  const open = findDrift(config.certificate.dir, live, owner).find((d) => d.what.startsWith('private key'));
  if (open)
    warning.push(
      `private key ${open.path} is readable by group or others (mode 0${open.mode.toString(8)}): the next check narrows it unless permissions.onDrift is report; or run cert-agent doctor --fix`,
    );
  // A little slack so a check that is merely running late is not a warning.
  const grace = overdueGraceMs(lifetime);
  if (!live.placeholder && !expired && now.getTime() > next.getTime() + grace)
    warning.push(`renewal overdue since ${next.toISOString()}`);
  const allowance = live.placeholder ? null : allowanceOf(config, live, now, warning);
  const certificate = {
    configuredNames: config.certificate.domains,
    names: s.names,
    missingNames: found('names-missing')?.missing ?? [],
    serial: s.serial,
    subject: s.subject,
    issuer: s.issuer,
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    lifetimeUsed: lifetime > 0 ? Math.round(((now.getTime() - notBefore.getTime()) / lifetime) * 1000) / 1000 : 1,
    secondsToExpiry: Math.round((notAfter.getTime() - now.getTime()) / 1000),
    expired,
    placeholder: live.placeholder,
    keyMatches: !found('key-mismatch'),
    chainVerifies: chainProblem === null,
    chainProblem,
    directory: config.certificate.dir,
    set: live.id,
    publishedNames: published,
  };
  return { live, certificate, next, allowance, critical, warning };
}

/** How long the CA may stay unreachable, and a warning (into `warning`) when that is under renewal.minAllowance. */
function allowanceOf(
  config: Config,
  live: LiveSet,
  now: Date,
  warning: string[],
): StatusReport['renewal']['caOutageAllowance'] {
  const { notBefore, notAfter } = validityOf(live.cert);
  const a = outageAllowance({ notBefore, notAfter }, config.renewal, randomForSerial(live.cert.serialNumber), now);
  const warnBelow = allowanceThresholdMs(config.renewal.minAllowance, a.lifetimeMs);
  const s = (ms: number) => Math.round(ms / 1000);
  if (now < notAfter && a.fromNowMs < warnBelow) {
    warning.push(
      `the CA may stay unreachable for only ${human(a.fromNowMs / 1000)} more before the certificate ` +
        `expires at ${notAfter.toISOString()} (renewal.minAllowance: ${human(warnBelow / 1000)}; ` +
        `a normal day leaves ${human(a.normalDayMs / 1000)}): make the renewal succeed now ` +
        '(see the last attempt; cert-agent renew)',
    );
  }
  return { seconds: s(a.fromNowMs), normalDaySeconds: s(a.normalDayMs), warnBelowSeconds: s(warnBelow) };
}
