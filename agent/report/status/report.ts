/**
 * The `status` document (docs/status.schema.json) and the rules its
 * renderings share, apart from the code that builds it, so that the
 * sections (status/*.ts), the text rendering and the metrics all read it
 * without importing one another.
 */
import type { PublishedName } from '../../store/published.js';

export type Level = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
export const EXIT_FOR: Record<Level, 0 | 1 | 2 | 3> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };
export const STATUS_SCHEMA_ID = 'cert-agent.status/v2';

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
    /** renewal.method: how a live certificate is renewed. */
    method?: 'auto' | 'acme' | 'step';
    /** How the last renewal went: over the CA's renewal API or by ACME, and why not the API. */
    lastRenewal?: null | { method: 'step' | 'acme'; at: string; fallback: string | null };
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

/** How long past its renewal time a certificate may go before status warns (a check merely running late). */
export function overdueGraceMs(lifetimeMs: number): number {
  return Math.min(10 * 60_000, lifetimeMs * 0.05);
}

/** What one section found wrong, most severe kept apart: the document lists every critical first. */
export interface Problems {
  critical: string[];
  warning: string[];
}

/** One certificate's report inside the agent's: its name, verdict and sections. */
export type CertificateReport = { name: string } & Pick<
  StatusReport,
  'status' | 'problems' | 'certificate' | 'renewal' | 'ca' | 'reload'
>;

/**
 * The agent's report: the worst verdict over its certificates, every
 * problem (prefixed with the certificate's name when there are several),
 * and each certificate's report. With one certificate, its sections are
 * also at the top, where 0.1.0's document had them.
 */
export type AgentStatusReport = Pick<StatusReport, 'schema' | 'status' | 'problems' | 'checkedAt'> &
  Partial<Pick<StatusReport, 'certificate' | 'renewal' | 'ca' | 'reload'>> & { certificates: CertificateReport[] };

/** Worse to the right, as monitoring ranks them: a certificate known to be broken outranks one that cannot be read. */
const SEVERITY: Level[] = ['OK', 'WARNING', 'UNKNOWN', 'CRITICAL'];

/** The worst of several verdicts. */
export function worstOf(levels: Level[]): Level {
  return levels.reduce<Level>((w, l) => (SEVERITY.indexOf(l) > SEVERITY.indexOf(w) ? l : w), 'OK');
}
