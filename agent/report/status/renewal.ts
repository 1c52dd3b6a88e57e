/** The renewal section of `status`: when the next renewal is due, and how the last attempts went. */
import type { RenewalMethod } from '../../config/schema.js';
import type { AgentState } from '../../store/state.js';
import type { Problems, StatusReport } from './report.js';

export function renewalSection(
  state: AgentState,
  next: Date | undefined,
  allowance: StatusReport['renewal']['caOutageAllowance'],
  now: Date,
  method: RenewalMethod,
): Problems & { renewal: StatusReport['renewal'] } {
  const last = state.lastAttempt;
  const warning =
    last?.result === 'failed' ? [`last attempt at ${last.at} failed: ${last.error ?? 'unknown error'}`] : [];
  const renewal = {
    next: next?.toISOString() ?? null,
    due: next !== undefined && now >= next,
    nextAttempt: state.nextAttempt ?? null,
    lastAttempt: last
      ? { at: last.at, result: last.result, error: last.error ?? null, errorKind: last.errorKind ?? null }
      : null,
    lastSuccess: state.lastSuccess ?? null,
    consecutiveFailures: state.consecutiveFailures ?? 0,
    caOutageAllowance: allowance,
    method,
    lastRenewal: state.lastRenewal
      ? { method: state.lastRenewal.method, at: state.lastRenewal.at, fallback: state.lastRenewal.fallback ?? null }
      : null,
  };
  return { renewal, critical: [], warning };
}
