/**
 * `cert-agent run`: a dumb loop around the renew pass. It owns no renewal
 * logic — every check asks the pass, which decides from the certificate on
 * disk and the wall clock — so a container frozen or suspended past its
 * renewal time renews at the first check after it wakes. Between cron checks
 * a timer fires at the exact renewal (or retry) moment.
 *
 * How a pass runs is the caller's (PassRunner): `cert-agent run` runs each in
 * a child process (pass-process.ts), so that this loop is all that stays
 * resident; tests and the benchmark's fleet run them in this process.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { certificatesOf, loadConfig, type AgentConfig } from '../config/config.js';
import { describeError } from '../lib/errors.js';
import { readIfExists } from '../lib/fs.js';
import type { Logger } from '../lib/log.js';
import { readState, type AgentState } from '../store/state.js';
import { tryLock } from '../store/lock.js';
import { DAEMON_PID_FILE } from '../store/layout.js';
import type { Random } from './schedule.js';
import { checkDecisionOf, triggerOverridesBackoff } from './backoff.js';
import { configSha256 } from './config-change.js';
import { parseCron, type CronSchedule } from '../lib/cron.js';

/** One pass the daemon asks for. */
export interface PassRequest {
  config: AgentConfig;
  /** Why: start, cron, timer, SIGHUP, config file changed. */
  trigger: string;
  /**
   * The daemon's clock and randomness, for a runner that runs the pass in
   * this process (the tests'); a pass in a child process has its own, as
   * functions do not cross the process boundary.
   */
  now: () => Date;
  random: Random;
  /** The daemon's pid, for daemon.pid (`enroll` signals it). */
  daemonPid: number;
  /** Aborted when the daemon stops and the pass has had its grace time. */
  signal: AbortSignal;
}

/**
 * Runs one pass to its end: failures are recorded and logged by the pass,
 * nothing is thrown. 'locked': another cert-agent held the lock, nothing done.
 */
export type PassRunner = (req: PassRequest) => Promise<'done' | 'failed' | 'locked'>;

export interface DaemonOptions {
  configPath: string;
  log: Logger;
  runPass: PassRunner;
  now?: () => Date;
  random?: Random;
}

/** setTimeout cannot wait longer than ~24.8 days; the cron check covers the rest anyway. */
const MAX_TIMER_MS = 6 * 60 * 60_000;
/** How long SIGTERM waits for a pass in flight before leaving anyway (writes are atomic either way). */
const STOP_GRACE_MS = 10_000;
/** How long a pass process told to stop has to exit. */
const ABORT_GRACE_MS = 2_000;
/** How long to leave the lock to a `cert-agent renew` from a shell before checking again. */
const LOCK_RETRY_MS = 2_000;

export class Daemon {
  private config: AgentConfig;
  private configHash: string;
  /** The cron check's timer (lib/cron.ts computes the moment; capped at MAX_TIMER_MS and re-armed). */
  private cronTimer: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private abort: AbortController | undefined;
  /** What the operator asked for while a pass ran (SIGHUP, config file changed): checked right after it. */
  private pending: string | undefined;
  private stopped = false;
  /** After a check skipped for the lock, no timer fires before this moment (epoch ms). */
  private quietUntil = 0;
  private readonly now: () => Date;
  private readonly random: Random;

  constructor(private readonly opts: DaemonOptions) {
    this.now = opts.now ?? (() => new Date());
    this.random = opts.random ?? Math.random;
    // Hashed before the file is loaded: a change in between is seen at the next check, not lost.
    this.configHash = configSha256(opts.configPath);
    this.config = loadConfig(opts.configPath);
  }

  start(): void {
    const { log } = this.opts;
    // Nothing is written here: daemon.pid, leftovers and the placeholder are
    // all handled inside the first pass, under the lock, so a `cert-agent
    // renew` started at the same moment cannot race the daemon's start.
    this.schedule();
    log.info(
      {
        event: 'daemon_started',
        domains: this.config.certificate.domains,
        check: this.config.renewal.check,
        caUrl: this.config.ca.url,
      },
      'cert-agent daemon started',
    );
    void this.check('start');
  }

  /** SIGHUP: re-read the configuration (keeping the old one when the new one is invalid), then check now. */
  reload(reason = 'SIGHUP'): void {
    const { log } = this.opts;
    this.configHash = configSha256(this.opts.configPath);
    try {
      const next = loadConfig(this.opts.configPath);
      const scheduleChanged = next.renewal.check !== this.config.renewal.check;
      this.config = next;
      if (scheduleChanged) this.schedule();
      log.info({ event: 'config_reloaded', reason, domains: next.certificate.domains }, 'configuration re-read');
    } catch (err) {
      log.error(
        { event: 'config_invalid', reason, error: describeError(err) },
        'new configuration is invalid; keeping the previous one',
      );
    }
    void this.check(reason, true);
  }

  /** SIGTERM/SIGINT: no new passes; wait briefly for one in flight. */
  async stop(signal = 'SIGTERM'): Promise<void> {
    this.stopped = true;
    if (this.cronTimer) clearTimeout(this.cronTimer);
    if (this.timer) clearTimeout(this.timer);
    const settled = (ms: number) => Promise.race([this.running, new Promise((r) => setTimeout(r, ms).unref())]);
    if (this.running) await settled(STOP_GRACE_MS);
    // Still running: a pass process is told to stop (its writes are atomic) and given a moment to exit.
    if (this.running) {
      this.abort?.abort();
      await settled(ABORT_GRACE_MS);
    }
    forgetDaemon(this.config.stateDir);
    this.opts.log.info({ event: 'daemon_stopped', signal }, 'cert-agent daemon stopped');
  }

  /** Arms the cron check for the next moment `renewal.check` matches; a check in flight is not doubled (check() skips). */
  private schedule(): void {
    if (this.cronTimer) clearTimeout(this.cronTimer);
    if (this.stopped) return;
    const cron = parseCron(this.config.renewal.check) as CronSchedule; // validated with the config
    const due = cron.next(this.now()).getTime();
    const wait = Math.min(Math.max(due - this.now().getTime(), 0), MAX_TIMER_MS);
    this.cronTimer = setTimeout(() => {
      // Timers run on the monotonic clock. Early (a capped wait, or the wall
      // clock set back): the next match is computed again from the new time.
      const early = this.now().getTime() < due;
      this.schedule();
      if (!early) void this.check('cron');
    }, wait);
  }

  /**
   * One check: skips while a retry is not yet due; otherwise runs the pass.
   * While a pass runs, what the operator asked for (a SIGHUP, a rewritten
   * config file, both ignoring the backoff) waits for it and runs right
   * after; a cron or timer check is dropped (the pass in flight is that check).
   */
  private check(trigger: string, ignoreBackoff = false): Promise<void> {
    if (this.stopped) return this.running ?? Promise.resolve();
    if (this.running) {
      if (ignoreBackoff) this.pending = trigger;
      return this.running;
    }
    if (configSha256(this.opts.configPath) !== this.configHash) {
      // `enroll` rewrote the file (e.g. a new fingerprint after the CA was recreated).
      this.reload('config file changed');
      return this.running ?? Promise.resolve();
    }
    const states = this.states();
    const override = ignoreBackoff || triggerOverridesBackoff(trigger);
    const decision = checkDecisionOf(states, this.now(), () => override);
    if (!decision.run) {
      // Backing off (after a failure, or a clock that disagrees with the CA's): the CA is left alone until then.
      if (trigger === 'cron') {
        const fields = {
          event: 'check_deferred',
          trigger,
          nextAttempt: decision.nextAttempt,
          attempt: Math.min(...states.map((st) => st.consecutiveFailures)),
        };
        this.opts.log.info(fields, 'backing off; next attempt at nextAttempt');
      }
      this.armTimer();
      return Promise.resolve();
    }
    this.running = this.pass(trigger).finally(() => {
      this.running = undefined;
      this.armTimer();
      const next = this.pending;
      this.pending = undefined;
      if (next !== undefined) void this.check(next, true);
    });
    return this.running;
  }

  private async pass(trigger: string): Promise<void> {
    const { config, now, random } = this;
    this.abort = new AbortController();
    const request = {
      config,
      trigger,
      now,
      random,
      daemonPid: process.pid,
      signal: this.abort.signal,
    };
    const outcome = await this.opts.runPass(request);
    // The holder writes state.json when done; until then do not spin on a renewal time that is already past.
    if (outcome === 'locked') this.quietUntil = this.now().getTime() + LOCK_RETRY_MS;
  }

  /** Every certificate's state file as the last pass left it. */
  private states(): AgentState[] {
    return (certificatesOf(this.config) ?? []).map((c) => readState(c.stateDir, c.certificate.name));
  }

  /**
   * A timer for the next moment any certificate needs a pass: its retry
   * while it backs off (its renewal time, already past, waits for that),
   * otherwise its renewal.
   */
  private armTimer(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const moments = this.states()
      .map((state) => state.nextAttempt ?? state.nextRenewal)
      .filter((m): m is string => Boolean(m))
      .map((m) => new Date(m).getTime());
    if (!moments.length) return;
    const now = this.now().getTime();
    const wait = Math.min(Math.max(Math.min(...moments) - now, this.quietUntil - now, 0) + 50, MAX_TIMER_MS);
    this.timer = setTimeout(() => void this.check('timer'), wait);
  }
}

/** Removes daemon.pid if it still names this process, under the lock; left for the next start when the lock is busy. */
function forgetDaemon(stateDir: string): void {
  const release = tryLock(stateDir);
  if (!release) return;
  try {
    const path = join(stateDir, DAEMON_PID_FILE);
    if (readIfExists(path)?.trim() === String(process.pid)) rmSync(path, { force: true });
  } finally {
    release();
  }
}
