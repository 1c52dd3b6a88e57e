/**
 * Each certificate's state file in the state directory (state.json for the
 * certificate named `default`, state-NAME.json for any other: layout.ts):
 * what its last pass did, what comes next and what `status` must report. Written atomically after every pass; a
 * missing or unreadable file reads as a fresh state, never as an error, so
 * a damaged state file cannot stop renewals.
 */
import { join } from 'node:path';
import { readIfExists, syncDir, writeFileAtomic } from '../lib/fs.js';
import { PATHS, stateFileOf } from './layout.js';

export interface Attempt {
  at: string;
  result: 'renewed' | 'not-due' | 'failed';
  error?: string;
  errorKind?: string;
}

export interface ReloadRecord {
  target: string;
  at: string;
  ok: boolean;
  detail?: string;
  /**
   * Serial of the live set this reload was for: a live set of another serial
   * was installed by a pass that never reached its reload (killed between
   * them), and the next pass reloads the consumer onto it.
   */
  serial?: string;
  /** Serial the proxy was seen serving after the reload, when verified. */
  servedSerial?: string;
}

/** How the last renewal went: over the CA's renewal API (`step`) or by an ACME order, and why not the API. */
export interface LastRenewal {
  method: 'step' | 'acme';
  at: string;
  /** The CA's API was wanted (renewal.method auto) but could not renew: why. */
  fallback?: string;
}

export interface AgentState {
  lastAttempt?: Attempt;
  lastSuccess?: string;
  consecutiveFailures: number;
  /** Index into the backoff table; 0 after a success. */
  backoffStep: number;
  nextRenewal?: string;
  nextAttempt?: string;
  placeholder: boolean;
  trust?: { ok: boolean; detail?: string; offeredFingerprints?: string[]; checkedAt: string };
  reload?: ReloadRecord;
  lastRenewal?: LastRenewal;
  /** SHA-256 of the config file the last timer-mode pass ran with: a file changed since is checked at once. */
  configSha256?: string;
}

export function emptyState(): AgentState {
  return { consecutiveFailures: 0, backoffStep: 0, placeholder: false };
}

export function readState(stateDir: string, name: string): AgentState {
  const text = readIfExists(join(stateDir, stateFileOf(name)));
  if (!text) return emptyState();
  try {
    return { ...emptyState(), ...(JSON.parse(text) as Partial<AgentState>) };
  } catch {
    return emptyState();
  }
}

/**
 * `before`: the state as the pass read it. When the only change is the time
 * of a check that found nothing to do, the file is replaced without fsync:
 * a power cut would bring back the previous check's time, nothing else, and
 * a pass over many certificates does not wait for the disk once per
 * certificate.
 */
export function writeState(stateDir: string, name: string, state: AgentState, before?: AgentState): void {
  writeStates(stateDir, [{ name, state, ...(before ? { before } : {}) }]);
}

/** Several certificates' state files at the end of one pass: each written whole, the directory synced once. */
export function writeStates(
  stateDir: string,
  states: { name: string; state: AgentState; before?: AgentState }[],
): void {
  let durable = false;
  for (const { name, state, before } of states) {
    const text = `${JSON.stringify(state, null, 2)}\n`;
    const keep = !before || !onlyCheckedAgain(before, state);
    writeFileAtomic(join(stateDir, stateFileOf(name)), text, PATHS.state.mode({}), keep, false);
    durable ||= keep;
  }
  if (durable) syncDir(stateDir);
}

function onlyCheckedAgain(before: AgentState, after: AgentState): boolean {
  // The times of the check itself (the attempt, the trust found as before) are what a routine check changes.
  const routine = ({ lastAttempt: _a, trust, ...rest }: AgentState) =>
    JSON.stringify({ ...rest, trust: trust && { ...trust, checkedAt: undefined } });
  const notDue = before.lastAttempt?.result === 'not-due' && after.lastAttempt?.result === 'not-due';
  return notDue && routine(before) === routine(after);
}
