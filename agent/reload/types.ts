/**
 * The contract between the renewal pass and the consumers it reloads. A
 * target makes the consumer use the set that just went live and proves it
 * (a handshake serving the new serial where reload.verify is set). It may
 * also prepare the consumer for a challenge before an order (a proxy that
 * must route the challenge path to the agent). When the consumer refused the
 * new files, its ReloadError says `rollback: true` and the pass restores the
 * previous set. Adding a target is a new file plus its entry in index.ts.
 *
 * A target also owns what the rest of the agent would otherwise have to
 * know about its consumer: the defaults that fit it (challenge mode,
 * where it serves TLS), `doctor`'s view of whether it uses the agent's
 * files, and who its web server runs as.
 */
import type { ChallengeMode, Config } from '../config/config.js';
import type { Diagnosis } from '../lib/diagnosis.js';
import type { ReloadError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { LiveSet } from '../store/sets.js';
import type { Solver, WebUser } from '../challenge/types.js';

/** A certificate whose live set the consumer must take, with its own view of the configuration. */
export interface ReloadSet {
  config: Config;
  live: LiveSet;
}

/**
 * One reload of a consumer for every certificate it serves that changed in
 * this pass (several certificates with the same target and the same consumer
 * settings are reloaded together, once).
 */
export interface ReloadContext {
  /** The consumer's settings (those of the first set; every set shares them). */
  config: Config;
  /** The certificates whose live sets the consumer must take now, at least one. */
  sets: ReloadSet[];
  log: Logger;
}

/** How one certificate's reload went, when it went well. */
export interface ReloadOutcome {
  detail: string;
  /** Serial seen on reload.verify after the reload, when checked. */
  servedSerial?: string;
}

/** Per set, in the order of ReloadContext.sets: its outcome, or the ReloadError saying why the consumer does not serve it. */
export type SetResult = ReloadOutcome | ReloadError;

export interface ChallengeContext {
  config: Config;
  /** The live set, if any: the consumer keeps serving it while the order runs. */
  live: LiveSet | undefined;
  /** The open solver, for a probe token through the consumer. */
  solver: Solver;
  log: Logger;
}

/** What `enroll` writes for this target when the operator names nothing else. */
export interface TargetDefaults {
  /** The challenge mode that fits the consumer (one that owns port 80 cannot leave it to standalone). */
  challengeMode: ChallengeMode;
  /** Where the consumer serves TLS, to confirm a reload by a handshake (reload.verify). */
  verify?: string;
}

export interface ReloadTarget {
  readonly defaults: TargetDefaults;
  /**
   * Makes the consumer use the live sets, with one reload for all of them,
   * and checks each (a handshake with its first name, where reload.verify is
   * set). Resolves with a result per set; throws ReloadError when the reload
   * itself failed (with `rollback: true` when the consumer refused the new
   * files and the previous sets should be restored, and `refused` naming the
   * certificates it refused when it can tell).
   */
  reload(ctx: ReloadContext): Promise<SetResult[]>;
  /**
   * Before an order: make the consumer route the challenge to the agent and
   * check that it does. Returns a warning when that could not be confirmed;
   * the order goes ahead anyway, since the CA's view is what counts.
   */
  prepareChallenge?(ctx: ChallengeContext): Promise<string | undefined>;
  /** `doctor`: whether the consumer uses the agent's files, each line what to change when it does not. */
  diagnose(config: Config): Promise<Diagnosis[]>;
  /** Who the consumer's web server runs as, to explain a webroot token it may not read; undefined when unknown. */
  webServerUser(config: Config): Promise<WebUser | undefined>;
}
