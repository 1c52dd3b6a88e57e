/**
 * The contract between the renewal pass and the consumers it reloads. A
 * target makes the consumer use the set that just went live and proves it
 * (a handshake serving the new serial where reload.verify is set). It may
 * also prepare the consumer for a challenge before an order (a proxy that
 * must route the challenge path to the agent). When the consumer refused the
 * new files, its ReloadError says `rollback: true` and the pass restores the
 * previous set. Adding a target is a new file plus its entry in index.ts.
 */
import type { Config } from '../config/config.js';
import type { Logger } from '../lib/log.js';
import type { LiveSet } from '../store/sets.js';
import type { Solver } from '../challenge/types.js';

export interface ReloadContext {
  config: Config;
  /** The set that just went live. */
  live: LiveSet;
  log: Logger;
}

export interface ReloadOutcome {
  detail: string;
  /** Serial seen on reload.verify after the reload, when checked. */
  servedSerial?: string;
}

export interface ChallengeContext {
  config: Config;
  /** The live set, if any: the consumer keeps serving it while the order runs. */
  live: LiveSet | undefined;
  /** The open solver, for a probe token through the consumer. */
  solver: Solver;
  log: Logger;
}

export interface ReloadTarget {
  /**
   * Makes the consumer use the live set. Resolves when it verifiably does;
   * throws ReloadError otherwise (with `rollback: true` when the consumer
   * refused the new files and the previous set should be restored).
   */
  reload(ctx: ReloadContext): Promise<ReloadOutcome>;
  /**
   * Before an order: make the consumer route the challenge to the agent and
   * check that it does. Returns a warning when that could not be confirmed;
   * the order goes ahead anyway, since the CA's view is what counts.
   */
  prepareChallenge?(ctx: ChallengeContext): Promise<string | undefined>;
}
