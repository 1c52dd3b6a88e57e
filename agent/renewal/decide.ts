/**
 * The renewal decision, and the only place its reasons are written: from
 * what is live, what the assessment found, the names consumers read, the
 * state of the last pass, the policy and the clock, whether to renew, to
 * reload the consumer, or to do nothing, why, and when the certificate is
 * due. Pure (nothing read, nothing written), so the pass (daemon and timer
 * mode), `renew --dry-run` and `status` take the same decision, and it is
 * tested as a table.
 */
import type { Finding } from '../pki/assess.js';
import { firstCritical } from '../pki/assess.js';
import type { AgentState } from '../store/state.js';
import { renewalTimeOf, type RenewalPolicy } from './schedule.js';
import type { X509Certificate } from 'node:crypto';

/** What the names consumers read need from this pass. */
export interface PublishedNeeds {
  /** Names whose file the live set lacks: only a new set mends them. */
  lacking: string[];
  /** Names put back as links into the live set (by this pass, or by the next check): the consumer must reload. */
  restored: string[];
}

export interface DecisionInput {
  /** The live set, or undefined when none is installed. */
  live: { cert: X509Certificate } | undefined;
  /** The assessment of the live set (empty when none is installed). */
  findings: Finding[];
  published: PublishedNeeds;
  state: Pick<AgentState, 'reload'>;
  config: { renewal: RenewalPolicy; reload: { target: string } };
  now: Date;
  /** `renew --force`. */
  force?: boolean;
}

export type Decision =
  | { action: 'renew'; reason: string; next: Date | undefined }
  | { action: 'reload' | 'nothing'; reason: string; next: Date };

/** With a live set, the next moment is always known: when that set is due. */
export function decide(input: DecisionInput & { live: { cert: X509Certificate } }): Decision & { next: Date };
export function decide(input: DecisionInput): Decision;
export function decide(input: DecisionInput): Decision {
  const { live, findings, published, state, config, now } = input;
  if (input.force) return { action: 'renew', reason: 'forced', next: live && renewalTimeOf(live, config) };
  if (!live) return { action: 'renew', reason: 'no certificate installed', next: undefined };
  const next = renewalTimeOf(live, config);
  const replaceNow = firstCritical(findings) ?? findings.find((f) => f.code === 'placeholder');
  if (replaceNow) return { action: 'renew', reason: replaceNow.message, next };
  if (now >= next) return { action: 'renew', reason: `renewal due since ${next.toISOString()}`, next };
  // A published name whose file the live set lacks is mended by a new set.
  if (published.lacking.length)
    return { action: 'renew', reason: `the live set lacks ${published.lacking.join(', ')}`, next };
  // The certificate is fine but the consumer never took it (a reload that
  // failed after the install): keep reloading until it does, or the proxy
  // serves the old certificate until the next renewal, or past its expiry.
  // Names just restored may have been serving a copy: the consumer reloads onto the live set.
  const restored = published.restored.length ? [`restored ${published.restored.join(', ')}`] : [];
  // A live set the consumer was never reloaded for: its pass was killed
  // between the install and the reload (in a pass of several certificates,
  // the others' orders come in between).
  const untaken = config.reload.target !== 'none' ? untakenReason(state, live.cert) : undefined;
  const reason = ['not due', ...restored, ...(untaken ? [untaken] : [])].join('; ');
  const mustReload =
    (state.reload !== undefined && !state.reload.ok) ||
    untaken !== undefined ||
    (restored.length > 0 && config.reload.target !== 'none');
  return { action: mustReload ? 'reload' : 'nothing', reason, next };
}

/** Why the consumer must take the live set: its last reload was for another serial (none known: nothing to say). */
function untakenReason(state: Pick<AgentState, 'reload'>, cert: X509Certificate): string | undefined {
  const last = state.reload?.serial;
  if (last === undefined || last === cert.serialNumber.toLowerCase()) return undefined;
  return `the consumer was last reloaded for serial ${last}`;
}

/** The reason to renew, or undefined when the decision is not to (what `renew --dry-run` reports). */
export function renewReason(decision: Decision): string | undefined {
  return decision.action === 'renew' ? decision.reason : undefined;
}

/** The needs of the names consumers read, from their problems as found (before any is put back). */
export function publishedNeeds(problems: { name: string; state: string }[]): PublishedNeeds {
  const broken = problems.filter((p) => p.state !== 'ok');
  return {
    lacking: broken.filter((p) => p.state === 'dangling').map((p) => p.name),
    restored: broken.filter((p) => p.state !== 'dangling').map((p) => p.name),
  };
}
