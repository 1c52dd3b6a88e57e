/**
 * `cert-agent status`: the truth about this container's certificate, read
 * from disk and state.json only (no network, no daemon needed), in one look
 * for a person and as a stable JSON document for monitoring
 * (docs/status.schema.json). Exit codes follow the monitoring-plugin
 * convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 * The document is built field by field from state.json rather than copying
 * its records, so a new field in state.json never changes the published
 * schema by accident.
 */
import { X509Certificate } from 'node:crypto';
import type { Config } from '../config/config.js';
import { StoreError, describeError } from '../lib/errors.js';
import { readState } from '../store/state.js';
import { loadRepins, loadTrust } from '../trust/file.js';
import { certFingerprint, summarize, validityOf } from '../pki/x509.js';
import { assessSet, type FindingCode } from '../pki/assess.js';
import { ownershipForReading } from '../store/ownership.js';
import { allowanceThresholdMs, outageAllowance, randomForSerial, renewalTimeOf } from '../renewal/schedule.js';
import { human } from './status-text.js';
import { CertStore, type LiveSet } from '../store/sets.js';
import { findDrift } from '../store/permissions.js';
import { inspectPublishedNames, type PublishedName } from '../store/published.js';

export type Level = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
export const EXIT_FOR: Record<Level, 0 | 1 | 2 | 3> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };
export const STATUS_SCHEMA_ID = 'cert-agent.status/v1';

export interface StatusReport {
  schema: typeof STATUS_SCHEMA_ID;
  status: Level;
  /** Why the status is not OK, most severe first; empty when OK. */
  problems: string[];
  checkedAt: string;
  certificate: null | {
    configuredNames: string[];
    names: string[];
    missingNames: string[];
    serial: string;
    subject: string;
    issuer: string;
    notBefore: string;
    notAfter: string;
    /** Share of the lifetime elapsed, 0 at issue, 1 at expiry (above 1 when expired). */
    lifetimeUsed: number;
    secondsToExpiry: number;
    expired: boolean;
    placeholder: boolean;
    keyMatches: boolean;
    chainVerifies: boolean;
    chainProblem: string | null;
    directory: string;
    set: string;
    /** The names consumers read, each of which must link into the live set. */
    publishedNames: PublishedName[];
  };
  renewal: {
    next: string | null;
    /** True when the renewal time has passed (the daemon renews at its next check). */
    due: boolean;
    nextAttempt: string | null;
    lastAttempt: null | {
      at: string;
      result: 'renewed' | 'not-due' | 'failed';
      error: string | null;
      errorKind: string | null;
    };
    lastSuccess: string | null;
    consecutiveFailures: number;
    /** How long the CA may be unreachable; null without a certificate from the CA (none, or the placeholder). */
    caOutageAllowance: null | {
      /** From now until the live certificate expires. */
      seconds: number;
      /** What the schedule leaves on a normal day: notAfter − the renewal time. */
      normalDaySeconds: number;
      /** status warns below this (renewal.minAllowance). */
      warnBelowSeconds: number;
    };
  };
  ca: {
    url: string;
    directory: string;
    pinnedFingerprints: string[];
    /** Roots in the saved trust bundle (normally the pin itself). */
    trustedFingerprints: string[];
    trust: 'ok' | 'broken' | 'not-bootstrapped';
    trustDetail: string | null;
    offeredFingerprints: string[];
    /** What the CA serves as roots that is not trusted (no pin, no cross-signature by a trusted root). */
    untrustedRoots?: { fingerprint: string; subject: string; reason: string }[];
    /** The last change of pins by `enroll`, and who vouched for it. */
    lastRepin?: { at: string; from: string[]; to: string[]; vouchedBy: string } | null;
  };
  reload: {
    target: string;
    verify: string | null;
    lastResult: null | { at: string; ok: boolean; detail: string | null; servedSerial: string | null };
    /** Whether the proxy was last seen serving the installed serial; null when never checked. */
    servedMatches: boolean | null;
  };
}

/** A report for when there is nothing to inspect (no usable config); only these fields are promised then. */
/** How long past its renewal time a certificate may go before status warns (a check merely running late). */
export function overdueGraceMs(lifetimeMs: number): number {
  return Math.min(10 * 60_000, lifetimeMs * 0.05);
}

export function unknownReport(
  problem: string,
  now: Date,
): Pick<StatusReport, 'schema' | 'status' | 'problems' | 'checkedAt'> {
  return { schema: STATUS_SCHEMA_ID, status: 'UNKNOWN', problems: [problem], checkedAt: now.toISOString() };
}

export function collectStatus(config: Config, now: Date): StatusReport {
  try {
    return inspect(config, now);
  } catch (err) {
    // An unreadable directory or file must still give monitoring an answer, and say what to do.
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EACCES' || code === 'EPERM' ? '; run as root (sudo cert-agent status)' : '';
    return unknownReport(`cannot inspect the installation: ${describeError(err)}${hint}`, now) as StatusReport;
  }
}

const normSerial = (s: string) => s.toLowerCase().replace(/^0+/, '');

/** What the operator can do about each finding of the assessment, after its message. */
const REMEDY: Partial<Record<FindingCode, string>> = {
  'key-mismatch': ' (run: cert-agent renew --force)',
  'names-missing': ' (run: cert-agent renew --force)',
  chain: ' (run: cert-agent renew --force)',
  expired: ' (run: cert-agent renew)',
};

function inspect(config: Config, now: Date): StatusReport {
  const critical: string[] = [];
  const warning: string[] = [];
  const state = readState(config.stateDir);
  const trust = loadTrust(config.stateDir);
  const roots = (trust?.roots ?? []).map((r) => new X509Certificate(r.pem));
  // Reading needs no ownership, and an unknown owner must not hide the status.
  const owner = ownershipForReading(config);
  // A directory entry that is not the agent's own is refused, and said as such.
  let refused: string | undefined;
  let live: LiveSet | undefined;
  try {
    live = new CertStore(config.certificate.dir, owner).live();
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    refused = describeError(err);
  }

  let certificate: StatusReport['certificate'] = null;
  let next: Date | undefined;
  let allowance: StatusReport['renewal']['caOutageAllowance'] = null;
  if (refused) {
    critical.push(refused);
  } else if (!live) {
    critical.push(`no certificate installed in ${config.certificate.dir} (run: cert-agent renew)`);
  } else {
    const s = summarize(live.cert);
    const { notBefore, notAfter } = validityOf(live.cert);
    const lifetime = notAfter.getTime() - notBefore.getTime();
    const expired = now >= notAfter;
    const { findings } = assessSet(live, { domains: config.certificate.domains, roots, now });
    const found = (code: FindingCode) => findings.find((f) => f.code === code);
    // The same findings as the renewal decision and the store, with what the operator can do about them.
    const chainFinding = found('chain') ?? found('expired') ?? found('not-yet-valid');
    const chainProblem = live.placeholder ? 'self-signed placeholder' : (chainFinding?.problem ?? null);
    const missing = found('names-missing')?.missing ?? [];
    next = renewalTimeOf(live, config);
    for (const f of findings) (f.severity === 'critical' ? critical : warning).push(f.message + (REMEDY[f.code] ?? ''));
    const published = inspectPublishedNames(config.certificate.dir);
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
    if (!live.placeholder) {
      const a = outageAllowance({ notBefore, notAfter }, config.renewal, randomForSerial(live.cert.serialNumber), now);
      const warnBelow = allowanceThresholdMs(config.renewal.minAllowance, a.lifetimeMs);
      const s = (ms: number) => Math.round(ms / 1000);
      allowance = { seconds: s(a.fromNowMs), normalDaySeconds: s(a.normalDayMs), warnBelowSeconds: s(warnBelow) };
      if (!expired && a.fromNowMs < warnBelow) {
        warning.push(
          `the CA may stay unreachable for only ${human(a.fromNowMs / 1000)} more before the certificate ` +
            `expires at ${notAfter.toISOString()} (renewal.minAllowance: ${human(warnBelow / 1000)}; ` +
            `a normal day leaves ${human(a.normalDayMs / 1000)}): make the renewal succeed now ` +
            '(see the last attempt; cert-agent renew)',
        );
      }
    }
    certificate = {
      configuredNames: config.certificate.domains,
      names: s.names,
      missingNames: missing,
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
  }

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

  const last = state.lastAttempt;
  if (last?.result === 'failed') warning.push(`last attempt at ${last.at} failed: ${last.error ?? 'unknown error'}`);

  const rl = state.reload;
  let servedMatches: boolean | null = null;
  if (rl?.servedSerial && live) servedMatches = normSerial(rl.servedSerial) === normSerial(live.cert.serialNumber);
  if (rl && !rl.ok) warning.push(`last reload of ${rl.target} failed: ${rl.detail ?? 'no detail'}`);
  else if (servedMatches === false)
    warning.push(
      `${config.reload.target} was last seen serving serial ${rl?.servedSerial}, not the installed ${live?.cert.serialNumber.toLowerCase()}`,
    );

  const status: Level = critical.length ? 'CRITICAL' : warning.length ? 'WARNING' : 'OK';
  return {
    schema: STATUS_SCHEMA_ID,
    status,
    problems: [...critical, ...warning],
    checkedAt: now.toISOString(),
    certificate,
    renewal: {
      next: next?.toISOString() ?? null,
      due: next !== undefined && now >= next,
      nextAttempt: state.nextAttempt ?? null,
      lastAttempt: last
        ? { at: last.at, result: last.result, error: last.error ?? null, errorKind: last.errorKind ?? null }
        : null,
      lastSuccess: state.lastSuccess ?? null,
      consecutiveFailures: state.consecutiveFailures ?? 0,
      caOutageAllowance: allowance,
    },
    ca: {
      url: config.ca.url,
      directory: config.ca.directory,
      pinnedFingerprints: config.ca.fingerprints,
      trustedFingerprints: roots.map(certFingerprint),
      trust: trustState,
      trustDetail: state.trust?.detail ?? null,
      offeredFingerprints: offered,
      untrustedRoots: refusedRoots.map((r) => ({ fingerprint: r.fingerprint, subject: r.subject, reason: r.reason })),
      lastRepin: loadRepins(config.stateDir).at(-1) ?? null,
    },
    reload: {
      target: config.reload.target,
      verify: config.reload.verify ?? null,
      lastResult: rl
        ? { at: rl.at, ok: rl.ok, detail: rl.detail ?? null, servedSerial: rl.servedSerial ?? null }
        : null,
      servedMatches,
    },
  };
}
