/**
 * One renewal pass (`cert-agent renew`, and each check of the daemon and of
 * timer mode), under one lock, for every certificate of the agent (or the
 * one asked for): for each, store upkeep, then trust → decide → act; then
 * each consumer reloaded once for all of its certificates that changed
 * (reload-group.ts); then each certificate's record. One certificate's
 * failure is its own: it is recorded and the others go on. It never prints;
 * it returns what happened to each and logs one event per step. The
 * decision is decide.ts, the acting act.ts, the record record.ts.
 */
import { certificatesOf, type Config } from '../config/config.js';
import { AgentError, ConfigError, StoreError, TrustError, UsageError, describeError } from '../lib/errors.js';
import { ensurePrivateDir } from '../lib/fs.js';
import { checkStoreDirectories } from '../store/directories.js';
import { acquireLock } from '../store/lock.js';
import { storeFor } from '../store/ownership.js';
import { readState, writeStates, type AgentState } from '../store/state.js';
import { validityOf } from '../pki/x509.js';
import { refreshTrust } from '../trust/refresh.js';
import type { TrustBundle } from '../trust/file.js';
import { act, observe, rootCertificates, type Acted } from './act.js';
import { checkDecision } from './backoff.js';
import type { CertRun, PassContext, PassOptions, PassOutcome, PassResult } from './context.js';
import { decide } from './decide.js';
import { afterFailure, afterSuccess, clockSkewed, withPlaceholder } from './record.js';
import { reloadConsumers } from './reload-group.js';
import { liveIfReadable, placeholderIfUnusable, recordDaemon, upkeepStore } from './store-upkeep.js';
import { offeredFingerprints, withTrust } from './trust-upkeep.js';

export type { PassOptions, PassOutcome, PassResult } from './context.js';

/** A pass over the certificates asked for; what became of each, in the configuration's order. */
export async function runPass(opts: PassOptions): Promise<PassOutcome[]> {
  const certs = selected(opts);
  const first = certs[0] as Config;
  checkStoreDirectories(first, opts.log, 'renewal_failed', 'state');
  // A certificate whose directory is no longer safe is refused before anything is written; when that is
  // every certificate asked for, the pass writes nothing at all (not even the lock).
  const refused = new Map(certs.map((c) => [c, refusal(c, opts)]).filter((e): e is [Config, StoreError] => !!e[1]));
  if (refused.size === certs.length) throw refused.get(first);
  ensurePrivateDir(first.stateDir);
  const release = acquireLock(first.stateDir, opts.daemonPid);
  const shared = {};
  const runs = certs.map((config) => openRun(config, opts, shared, refused.get(config)));
  try {
    if (opts.daemonPid !== undefined) recordDaemon(first.stateDir, opts.daemonPid);
    for (const run of runs) if (!run.deferred) await prepare(run);
    await reloadConsumers(runs);
    for (const run of runs) if (!run.deferred && !run.untouched) await record(run);
    await refreshAfterRenewal(runs);
  } finally {
    try {
      const written = runs.filter((run) => !run.deferred && !run.untouched);
      writeStates(
        first.stateDir,
        written.map((run) => ({ name: run.ctx.config.certificate.name, state: run.state, before: run.ctx.state })),
      );
    } finally {
      release();
    }
  }
  return runs.map(outcomeOf);
}

/**
 * One certificate's pass, as before there were several: its result, or its
 * error thrown (`renew` of one certificate, and the tests of one pass).
 */
export async function renewPass(opts: PassOptions): Promise<PassResult> {
  const outcomes = await runPass(opts);
  if (outcomes.length !== 1)
    throw new UsageError(`a pass of one certificate was asked for, but ${outcomes.length} are configured: name one`);
  const [outcome] = outcomes as [PassOutcome];
  if ('error' in outcome) throw outcome.error;
  if ('deferred' in outcome)
    throw new UsageError(`certificate ${outcome.name} is backing off until ${outcome.deferred}`);
  return outcome.result;
}

function selected(opts: PassOptions): Config[] {
  const certs = certificatesOf(opts.config, opts.name);
  if (!certs) {
    const names = (certificatesOf(opts.config) ?? []).map((c) => c.certificate.name).join(', ');
    throw new UsageError(`no certificate named ${JSON.stringify(opts.name)} in the configuration (it has: ${names})`);
  }
  return certs;
}

/** Why the certificate's directory is refused now (logged), or undefined when it keeps the rule. */
function refusal(config: Config, opts: PassOptions): StoreError | undefined {
  try {
    checkStoreDirectories(config, opts.log, 'renewal_failed', 'certificate');
    return undefined;
  } catch (err) {
    if (err instanceof StoreError) return err;
    throw err;
  }
}

function openRun(
  config: Config,
  opts: PassOptions,
  shared: PassContext['shared'],
  refused: StoreError | undefined,
): CertRun {
  const state = readState(config.stateDir, config.certificate.name);
  const ctx: PassContext = {
    opts,
    config,
    log: opts.log,
    store: storeFor(config),
    now: opts.now ?? (() => new Date()),
    random: opts.random ?? Math.random,
    state,
    repaired: [],
    shared,
  };
  // Refused before anything of it was written: not even its state file.
  const run: CertRun = refused ? { ctx, state, error: refused, untouched: true } : { ctx, state };
  if (opts.scheduled) {
    const decision = checkDecision(state.nextAttempt, ctx.now(), opts.scheduled.override(state));
    if (!decision.run) {
      run.deferred = decision.nextAttempt;
      const fields = {
        event: 'check_deferred',
        certificate: config.certificate.name,
        nextAttempt: decision.nextAttempt,
      };
      opts.log.info({ ...fields, attempt: state.consecutiveFailures }, 'backing off; next attempt at nextAttempt');
    }
  }
  return run;
}

/** Upkeep, trust, decision and action for one certificate; a failure stays with it. */
async function prepare(run: CertRun): Promise<void> {
  const { ctx } = run;
  if (run.untouched) return;
  try {
    const upkeep = upkeepStore(ctx);
    ctx.repaired = upkeep.repaired;
    run.acted = await withTrust(ctx, (trust) => decideAndAct(ctx, trust, upkeep));
  } catch (err) {
    run.error = err;
  }
}

/** The decision on what the store holds now, and doing it. */
async function decideAndAct(
  ctx: PassContext,
  trust: TrustBundle,
  read: NonNullable<Parameters<typeof observe>[3]>,
): Promise<Acted> {
  const { config, store, state, opts } = ctx;
  const now = ctx.now();
  const view = observe(
    store,
    { domains: config.certificate.domains, roots: rootCertificates(trust), now },
    ctx.repaired,
    read,
  );
  const decision = decide({ ...view, state, config, now, force: Boolean(opts.force) });
  return act(ctx, decision, view.live, trust);
}

async function record(run: CertRun): Promise<void> {
  const { ctx } = run;
  if (run.acted) {
    run.state = recordSuccess(ctx, run.state, run.acted.result);
    warnIfSkewed(ctx, run.acted.result, run.state);
    return;
  }
  run.state = await recordFailure(ctx, run.state, run.error);
  if (ctx.opts.placeholder && (await placeholderIfUnusable(ctx, run.error))) run.state = withPlaceholder(run.state);
}

function outcomeOf(run: CertRun): PassOutcome {
  const name = run.ctx.config.certificate.name;
  if (run.deferred) return { name, deferred: run.deferred };
  return run.acted ? { name, result: run.acted.result } : { name, error: run.error };
}

function recordSuccess(ctx: PassContext, state: AgentState, result: PassResult): AgentState {
  const { action, live, nextRenewal, method, fallback } = result;
  const way = { ...(method ? { method } : {}), ...(fallback ? { fallback } : {}) };
  return afterSuccess(state, { action, live, nextRenewal, ...way, ...recorded(ctx) }, ctx.now(), ctx.random);
}

/** What the pass adds to its record besides its result. */
function recorded(ctx: PassContext) {
  return {
    ...(ctx.reloaded ? { reload: ctx.reloaded } : {}),
    ...(ctx.opts.configSha256 ? { configSha256: ctx.opts.configSha256 } : {}),
  };
}

/** After any renewal: the CA's roots refreshed once (when asked). */
async function refreshAfterRenewal(runs: CertRun[]): Promise<void> {
  const renewed = runs.find((r) => r.acted?.result.action === 'renewed');
  if (!renewed?.ctx.opts.refreshTrust) return;
  await refreshTrust(renewed.ctx.config, renewed.ctx.now(), renewed.ctx.log);
}

/** A warning when the new certificate is already due by this machine's clock. */
function warnIfSkewed(ctx: PassContext, result: PassResult, state: AgentState): void {
  if (!state.nextAttempt || !clockSkewed(result, ctx.now())) return;
  ctx.log.warn(
    {
      event: 'clock_skew_suspected',
      certificate: ctx.config.certificate.name,
      serial: result.live.cert.serialNumber.toLowerCase(),
      notBefore: validityOf(result.live.cert).notBefore.toISOString(),
      nextRenewal: state.nextRenewal,
      nextAttempt: state.nextAttempt,
      now: ctx.now().toISOString(),
    },
    "the new certificate is already due by this machine's clock; check the clocks of this machine and the CA",
  );
}

async function recordFailure(ctx: PassContext, state: AgentState, err: unknown): Promise<AgentState> {
  const { config, log } = ctx;
  const offered = err instanceof TrustError ? await offeredFingerprints(config) : undefined;
  const failure = {
    error: err,
    live: liveIfReadable(ctx.store),
    policy: config.renewal,
    ...recorded(ctx),
    ...(offered ? { offeredFingerprints: offered } : {}),
  };
  const next = afterFailure(state, failure, ctx.now(), ctx.random);
  const errorKind = err instanceof AgentError ? err.kind : 'internal';
  const level = err instanceof StoreError || err instanceof ConfigError ? 'error' : 'warn';
  log[level](
    {
      event: 'renewal_failed',
      certificate: config.certificate.name,
      domains: config.certificate.domains,
      attempt: next.consecutiveFailures,
      error: describeError(err),
      errorKind,
      nextAttempt: next.nextAttempt,
    },
    'renewal failed; keeping the current certificate',
  );
  return next;
}
