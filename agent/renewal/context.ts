/**
 * The one context a pass's steps share (the configuration, the logger, the
 * store, the clock, the random source and what the caller asked for), so
 * each step takes it as its only dependency instead of a row of positional
 * parameters; and the options and the result of a pass.
 */
import type { AgentConfig, Config } from '../config/config.js';
import type { CaUnavailableError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { TrustBundle } from '../trust/file.js';
import type { ReloadOutcome } from '../reload/index.js';
import type { CertStore, LiveSet } from '../store/sets.js';
import type { AgentState, ReloadRecord } from '../store/state.js';
import type { Random } from './schedule.js';

export interface PassOptions {
  /** The agent's configuration: every certificate in it, or only `name`'s. */
  config: Config | AgentConfig;
  /** Only this certificate (`renew --name`). */
  name?: string;
  /**
   * A scheduled check (daemon, timer mode): a certificate whose last failure
   * set a next attempt still ahead is left alone (deferred), unless
   * `override` says the operator asked for it now (the daemon's start, a
   * SIGHUP, a config file changed since that certificate's last pass).
   */
  scheduled?: { override: (state: AgentState) => boolean };
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
  /** A renewal: `step` over the CA's renewal API, or `acme` (an order). */
  method?: 'step' | 'acme';
  /** A renewal by ACME where the API was wanted: why not. */
  fallback?: string;
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
  /**
   * Shared by every certificate of the pass: once the CA could not be
   * reached for one, the others that need it fail at once with the same
   * error instead of each waiting out its own timeout.
   */
  readonly shared: { unreachable?: CaUnavailableError; trust?: TrustBundle };
  /** What the consumer's reload in this pass recorded (kept for state.json whether it succeeded or not). */
  reloaded?: ReloadRecord;
}

/** What acting did for one certificate: the pass's result, and whether the consumer must take the live set now. */
export interface Acted {
  result: PassResult;
  reload: boolean;
}

/** One certificate in a pass: its context, and what became of it. */
export interface CertRun {
  ctx: PassContext;
  /** Its state file as the pass leaves it. */
  state: AgentState;
  /** Left alone by a scheduled check until this moment (its backoff). */
  deferred?: string;
  /** What acting did, until the certificate fails. */
  acted?: Acted;
  /** Why it failed, when it did (acted is then gone). */
  error?: unknown;
  /** Refused before anything of it was written (its directory is no longer safe): nothing recorded either. */
  untouched?: boolean;
}

/** What a pass did for each certificate, in the configuration's order. */
export type PassOutcome =
  { name: string; result: PassResult } | { name: string; error: unknown } | { name: string; deferred: string };
