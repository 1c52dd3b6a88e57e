import type { Config } from '../config/config.js';
import type { Logger } from '../lib/log.js';
import type { LiveSet } from '../store/sets.js';

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

/**
 * Makes the consumer use the live set. Resolves when it verifiably does;
 * throws ReloadError otherwise. `rollback: true` on the error asks the caller
 * to restore the previous set (the consumer refused the new files).
 */
export type Reloader = (ctx: ReloadContext) => Promise<ReloadOutcome>;
