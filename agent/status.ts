/**
 * `cert-agent status`: the truth about this container's certificate, read
 * from disk and state.json only (no network, no daemon needed), in one look
 * for a person and as a stable JSON document for monitoring. Exit codes
 * follow the monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN.
 */
import { X509Certificate } from 'node:crypto';
import type { Config } from './config.js';
import { readState, type AgentState } from './state.js';
import { loadTrust } from './trust.js';
import { keyMatchesCert, missingNames, summarize, verifyChain } from './x509.js';
import { renewalTimeOf, storeFor, validityOf } from './renew.js';

export type Level = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
export const EXIT_FOR: Record<Level, 0 | 1 | 2 | 3> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

export interface StatusReport {
  schema: 'cert-agent.status/v1';
  status: Level;
  /** Why the status is not OK, most severe first; empty when OK. */
  problems: string[];
  checkedAt: string;
  certificate: null | {
    configuredNames: string[];
    names: string[];
    serial: string;
    subject: string;
    issuer: string;
    notBefore: string;
    notAfter: string;
    /** Share of the lifetime elapsed, 0 at issue, 1 at expiry (above 1 when expired). */
    lifetimeUsed: number;
    secondsToExpiry: number;
    placeholder: boolean;
    keyMatches: boolean;
    chainVerifies: boolean;
    directory: string;
  };
  renewal: {
    next: string | null;
    nextAttempt: string | null;
    lastAttempt: AgentState['lastAttempt'] | null;
    lastSuccess: string | null;
    consecutiveFailures: number;
  };
  ca: {
    url: string;
    directory: string;
    pinnedFingerprints: string[];
    trust: 'ok' | 'broken' | 'not-bootstrapped';
    trustDetail: string | null;
    offeredFingerprints: string[];
  };
  reload: {
    target: string;
    lastResult: AgentState['reload'] | null;
    /** Whether the proxy was last seen serving the live serial; null when never checked. */
    servedMatches: boolean | null;
  };
}

export function collectStatus(config: Config, now: Date): StatusReport {
  const critical: string[] = [];
  const warning: string[] = [];
  const state = readState(config.stateDir);
  const trust = loadTrust(config.stateDir);
  const roots = (trust?.roots ?? []).map((r) => new X509Certificate(r.pem));
  const live = storeFor(config).live();

  let certificate: StatusReport['certificate'] = null;
  let next: Date | undefined;
  if (!live) {
    critical.push(`no certificate installed in ${config.certificate.dir}`);
  } else {
    const s = summarize(live.cert);
    const { notBefore, notAfter } = validityOf(live.cert);
    const lifetime = notAfter.getTime() - notBefore.getTime();
    const keyMatches = keyMatchesCert(live.keyPem, live.cert);
    const chain = live.placeholder ? { problem: 'placeholder' } : verifyChain(live.cert, live.intermediates, roots, now);
    const chainVerifies = !('problem' in chain);
    next = renewalTimeOf(live, config);
    if (now >= notAfter) critical.push(`certificate expired at ${notAfter.toISOString()}`);
    if (!keyMatches) critical.push('key.pem does not match cert.pem');
    if (live.placeholder) warning.push('placeholder (self-signed) certificate in use: the CA has not answered yet');
    else if (!chainVerifies && now < notAfter) critical.push(`certificate does not verify to the pinned root: ${(chain as { problem: string }).problem}`);
    const missing = missingNames(live.cert, config.certificate.domains);
    if (missing.length && !live.placeholder) critical.push(`certificate lacks configured names: ${missing.join(', ')}`);
    const grace = Math.min(10 * 60_000, lifetime * 0.05);
    if (now.getTime() > next.getTime() + grace && now < notAfter) warning.push(`renewal overdue since ${next.toISOString()}`);
    certificate = {
      configuredNames: config.certificate.domains,
      names: s.names,
      serial: s.serial,
      subject: s.subject,
      issuer: s.issuer,
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      lifetimeUsed: lifetime > 0 ? Math.round(((now.getTime() - notBefore.getTime()) / lifetime) * 1000) / 1000 : 1,
      secondsToExpiry: Math.round((notAfter.getTime() - now.getTime()) / 1000),
      placeholder: live.placeholder,
      keyMatches,
      chainVerifies,
      directory: config.certificate.dir,
    };
  }

  const trustState = state.trust && !state.trust.ok ? 'broken' : trust ? 'ok' : 'not-bootstrapped';
  if (trustState === 'broken') {
    const offered = state.trust?.offeredFingerprints?.length ? ` The CA now offers root ${state.trust.offeredFingerprints.join(', ')};` : '';
    critical.push(`trust broken: ${state.trust?.detail ?? 'the CA no longer chains to the pinned root'}.${offered} if the CA was recreated on purpose, run: cert-agent enroll --fingerprint <new fingerprint>`);
  }
  if (state.lastAttempt?.result === 'failed') warning.push(`last attempt at ${state.lastAttempt.at} failed: ${state.lastAttempt.error ?? 'unknown error'}`);
  let servedMatches: boolean | null = null;
  if (state.reload?.servedSerial && live) servedMatches = state.reload.servedSerial.replace(/^0+/, '') === live.cert.serialNumber.toLowerCase().replace(/^0+/, '');
  if (state.reload && !state.reload.ok) warning.push(`last reload of ${state.reload.target} failed: ${state.reload.detail ?? ''}`);
  else if (servedMatches === false) warning.push(`${config.reload.target} was last seen serving serial ${state.reload?.servedSerial}, not the installed one`);

  const status: Level = critical.length ? 'CRITICAL' : warning.length ? 'WARNING' : 'OK';
  return {
    schema: 'cert-agent.status/v1',
    status,
    problems: [...critical, ...warning],
    checkedAt: now.toISOString(),
    certificate,
    renewal: {
      next: next?.toISOString() ?? null,
      nextAttempt: state.nextAttempt ?? null,
      lastAttempt: state.lastAttempt ?? null,
      lastSuccess: state.lastSuccess ?? null,
      consecutiveFailures: state.consecutiveFailures,
    },
    ca: {
      url: config.ca.url,
      directory: config.ca.directory,
      pinnedFingerprints: config.ca.fingerprints,
      trust: trustState,
      trustDetail: state.trust?.detail ?? null,
      offeredFingerprints: state.trust?.offeredFingerprints ?? [],
    },
    reload: { target: config.reload.target, lastResult: state.reload ?? null, servedMatches },
  };
}
