/**
 * One scheduled check, shared by the daemon (`cert-agent run`) and timer mode
 * (`cert-agent check`, started by a systemd timer), so the two cannot drift
 * apart: the same rule for whether a check runs a pass at all (the retry
 * backoff remembered in state.json), and the same pass with everything a
 * scheduled agent adds (placeholder, trust refresh), followed by whatever
 * the caller exports after each pass (the CLI: the metrics textfile, which
 * belongs to the report layer above this one).
 */
import type { AgentConfig, Config } from '../config/config.js';
import type { AgentState } from '../store/state.js';
import { triggerOverridesBackoff } from './backoff.js';
import { AgentError, LockedError, describeError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { runPass } from './pass.js';
import type { PassRunner } from './daemon.js';
import type { Random } from './schedule.js';

export interface ScheduledPassOptions {
  config: AgentConfig | Config;
  log: Logger;
  trigger: string;
  now: () => Date;
  random?: Random;
  /** The daemon's pid, for daemon.pid (`enroll` signals it); timer mode has no process to signal. */
  daemonPid?: number;
  /** Timer mode: the SHA-256 of the config file, recorded in state.json for the next run to compare (config-change.ts). */
  configSha256?: string;
  /**
   * Whether a certificate in backoff runs anyway (timer mode: its config
   * changed since its last pass); by default what the trigger says
   * (backoff.ts triggerOverridesBackoff).
   */
  override?: (state: AgentState) => boolean;
  /** Called after every pass, also a failed one (e.g. the metrics textfile); its errors are only logged. */
  afterPass?: AfterPass;
}

/** What runs after each scheduled pass: it reads what the pass left on disk. */
export type AfterPass = (config: AgentConfig | Config, now: Date) => void;

/**
 * The pass of a scheduled check. Failures are recorded in state.json and
 * logged by the pass itself, and the next check retries: nothing is thrown.
 * Returns 'locked' when another cert-agent held the lock (nothing was done).
 */
export async function scheduledPass(opts: ScheduledPassOptions): Promise<'done' | 'failed' | 'locked'> {
  const { config, log, trigger } = opts;
  const operator = triggerOverridesBackoff(trigger);
  try {
    const outcomes = await runPass({
      config,
      log,
      now: opts.now,
      ...(opts.random ? { random: opts.random } : {}),
      scheduled: { override: opts.override ?? (() => operator) },
      placeholder: true,
      refreshTrust: true,
      ...(opts.daemonPid !== undefined ? { daemonPid: opts.daemonPid } : {}),
      ...(opts.configSha256 ? { configSha256: opts.configSha256 } : {}),
    });
    const errors = outcomes.flatMap((o) => ('error' in o ? [o.error] : []));
    for (const err of errors) if (!(err instanceof AgentError)) internalError(log, err, trigger);
    return errors.length ? 'failed' : 'done';
  } catch (err) {
    if (!(err instanceof AgentError)) internalError(log, err, trigger);
    // `cert-agent renew` from a shell holds the lock: nothing was done, the next check tries again.
    if (err instanceof LockedError) {
      const fields = { event: 'check_skipped', trigger, reason: describeError(err) };
      log.info(fields, 'another cert-agent holds the lock; checking again later');
      return 'locked';
    }
    return 'failed';
  } finally {
    if (opts.afterPass) runAfterPass(opts.afterPass, config, opts.now(), log);
  }
}

function internalError(log: Logger, err: unknown, trigger: string): void {
  log.error({ event: 'internal_error', error: describeError(err), trigger }, 'unexpected error in renewal pass');
}

/** Passes in the daemon's own process: for tests with an injected clock, and the benchmark's fleet of daemons in one process. */
export function inProcessPasses(log: Logger, afterPass?: AfterPass): PassRunner {
  return ({ config, trigger, now, random, daemonPid }) =>
    scheduledPass({ config, log, trigger, now, random, daemonPid, ...(afterPass ? { afterPass } : {}) });
}

/** node_exporter's textfile collector reads the file between passes; a failure here is only logged. */
function runAfterPass(afterPass: AfterPass, config: AgentConfig | Config, now: Date, log: Logger): void {
  try {
    afterPass(config, now);
  } catch (err) {
    log.warn({ event: 'metrics_failed', error: describeError(err) }, 'could not write the metrics textfile');
  }
}
