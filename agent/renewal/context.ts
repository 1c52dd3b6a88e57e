/**
 * The one context a pass's steps share (the configuration, the logger, the
 * store, the clock, the random source and what the caller asked for), so
 * each step takes it as its only dependency instead of a row of positional
 * parameters; and the options and the result of a pass.
 */
import type { Config } from '../config/config.js';
import type { Logger } from '../lib/log.js';
import type { ReloadOutcome } from '../reload/index.js';
import type { CertStore, LiveSet } from '../store/sets.js';
import type { AgentState, ReloadRecord } from '../store/state.js';
import type { Random } from './schedule.js';

export interface PassOptions {
  config: Config;
  log: Logger;
  force?: boolean;
  now?: () => Date;
  /** Random source for retry jitter (renewal jitter is fixed per certificate). */
  random?: Random;
  /**
   * What a long-running or scheduled agent adds to a pass, all done while the
   * pass holds the lock so that a `renew` from a shell never races it:
   * placeholder: when the pass fails and no usable certificate is live, install
   * the self-signed stand-in so the proxy can start;
   * refreshTrust: after a renewal, fetch the CA's roots again (at most hourly);
   * daemonPid: record this process in daemon.pid so `enroll` can signal it.
   */
  placeholder?: boolean;
  refreshTrust?: boolean;
  daemonPid?: number;
  /** Port the http-01 self-check fetches on (80, as the CA does); tests whose CA validates elsewhere move it. */
  selfCheckPort?: number;
  /** SHA-256 of the config file this pass runs with, recorded in state.json (timer mode compares it). */
  configSha256?: string;
}

export interface PassResult {
  action: 'renewed' | 'not-due';
  reason: string;
  live: LiveSet;
  nextRenewal: Date;
  reload?: ReloadOutcome;
  /** Published names this pass put back (they were missing, replaced by a file, or pointed elsewhere). */
  repaired?: string[];
}

export interface PassContext {
  readonly opts: PassOptions;
  readonly config: Config;
  readonly log: Logger;
  readonly store: CertStore;
  readonly now: () => Date;
  readonly random: Random;
  /** state.json as the pass found it. */
  readonly state: AgentState;
  /** Published names the store upkeep of this pass put back. */
  repaired: string[];
  /** What the consumer's reload in this pass recorded (kept for state.json whether it succeeded or not). */
  reloaded?: ReloadRecord;
}
