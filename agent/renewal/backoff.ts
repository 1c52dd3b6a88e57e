/**
 * Whether a scheduled check runs a pass at all: the retry backoff remembered
 * in state.json. A module of its own, free of the pass and everything it
 * loads, because the daemon decides with it in a process that never loads
 * the ACME client (see pass-process.ts).
 */

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
