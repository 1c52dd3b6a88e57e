/**
 * Whether a scheduled check runs a pass at all: the retry backoff remembered
 * in state.json. A module of its own, free of the pass and everything it
 * loads, because the daemon decides with it in a process that never loads
 * the ACME client (see pass-process.ts).
 */

import type { AgentState } from '../store/state.js';

export type CheckDecision = { run: true } | { run: false; nextAttempt: string };

/**
 * Whether a check runs a pass now. After a failure the pass records the next
 * attempt in state.json; until then the CA is left alone, however often the
 * checks come. `override` is for what the operator asked for (the daemon's
 * start, a SIGHUP, a config file rewritten since the last attempt).
 */
export function checkDecision(nextAttempt: string | undefined, now: Date, override = false): CheckDecision {
  if (override || !nextAttempt) return { run: true };
  const at = new Date(nextAttempt);
  if (Number.isNaN(at.getTime()) || at <= now) return { run: true };
  return { run: false, nextAttempt };
}

/** What the operator asked for (the daemon's start, a SIGHUP, a rewritten config file): no backoff holds it back. */
export function triggerOverridesBackoff(trigger: string): boolean {
  return trigger === 'start' || trigger === 'SIGHUP' || trigger === 'config file changed';
}

/**
 * Whether a scheduled check runs a pass for several certificates: when any
 * of them may run now (the pass leaves the others alone). Otherwise the
 * earliest moment one of them may.
 */
export function checkDecisionOf(
  states: AgentState[],
  now: Date,
  override: (state: AgentState) => boolean,
): CheckDecision {
  const decisions = states.map((s) => checkDecision(s.nextAttempt, now, override(s)));
  const waiting = decisions.filter((d): d is Extract<CheckDecision, { run: false }> => !d.run);
  if (waiting.length < decisions.length || !waiting.length) return { run: true };
  const earliest = waiting.map((d) => d.nextAttempt).sort((a, b) => Date.parse(a) - Date.parse(b))[0] as string;
  return { run: false, nextAttempt: earliest };
}
