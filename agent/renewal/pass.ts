/**
 * One renewal pass (`cert-agent renew`, and each check of the daemon and of
 * timer mode), under the lock: store upkeep, then trust → decide → act →
 * record. It never prints; it returns what happened and logs one event per
 * step. The decision is decide.ts, the acting act.ts, the record record.ts.
 */
import { AgentError, ConfigError, StoreError, TrustError, describeError } from '../lib/errors.js';
import { ensurePrivateDir } from '../lib/fs.js';
import { checkStoreDirectories } from '../store/directories.js';
import { acquireLock } from '../store/lock.js';
import { storeFor } from '../store/ownership.js';
import { readState, writeState, type AgentState } from '../store/state.js';
import { validityOf } from '../pki/x509.js';
import { refreshTrust } from '../trust/refresh.js';
import { act, observe, rootCertificates } from './act.js';
import type { PassContext, PassOptions, PassResult } from './context.js';
import { decide } from './decide.js';
import { afterFailure, afterSuccess, clockSkewed, withPlaceholder } from './record.js';
import { liveIfReadable, placeholderIfUnusable, upkeepStore } from './store-upkeep.js';
import type { TrustBundle } from '../trust/file.js';
import { offeredFingerprints, withTrust } from './trust-upkeep.js';

export type { PassOptions, PassResult } from './context.js';

export async function renewPass(opts: PassOptions): Promise<PassResult> {
  const { ctx, release } = openPass(opts);
  let state = ctx.state;
  try {
    ctx.repaired = upkeepStore(ctx);
    const result = await withTrust(ctx, (trust) => decideAndAct(ctx, trust));
    state = recordSuccess(ctx, state, result);
    await afterRenewal(ctx, result, state);
    return result;
  } catch (err) {
    state = await recordFailure(ctx, state, err);
    if (opts.placeholder && (await placeholderIfUnusable(ctx, err))) state = withPlaceholder(state);
    throw err;
  } finally {
    closePass(ctx, state, release);
  }
}

/** The decision on what the store holds now, and doing it. */
async function decideAndAct(ctx: PassContext, trust: TrustBundle): Promise<PassResult> {
  const { config, store, state, opts } = ctx;
  const now = ctx.now();
  const view = observe(
    store,
    { domains: config.certificate.domains, roots: rootCertificates(trust), now },
    ctx.repaired,
  );
  const decision = decide({ ...view, state, config, now, force: Boolean(opts.force) });
  return act(ctx, decision, view.live, trust);
}

/** Checks the directories, takes the lock and reads state.json. */
function openPass(opts: PassOptions): { ctx: PassContext; release: () => void } {
  const { config, log } = opts;
  checkStoreDirectories(config, log);
  ensurePrivateDir(config.stateDir);
  const release = acquireLock(config.stateDir, opts.daemonPid);
  const ctx: PassContext = {
    opts,
    config,
    log,
    store: storeFor(config),
    now: opts.now ?? (() => new Date()),
    random: opts.random ?? Math.random,
    state: readState(config.stateDir),
    repaired: [],
  };
  return { ctx, release };
}

function closePass(ctx: PassContext, state: AgentState, release: () => void): void {
  try {
    writeState(ctx.config.stateDir, state);
  } finally {
    release();
  }
}

function recordSuccess(ctx: PassContext, state: AgentState, result: PassResult): AgentState {
  const { action, live, nextRenewal } = result;
  return afterSuccess(state, { action, live, nextRenewal, ...recorded(ctx) }, ctx.now(), ctx.random);
}

/** What the pass adds to its record besides its result. */
function recorded(ctx: PassContext) {
  return {
    ...(ctx.reloaded ? { reload: ctx.reloaded } : {}),
    ...(ctx.opts.configSha256 ? { configSha256: ctx.opts.configSha256 } : {}),
  };
}

/** After a renewal: the CA's roots refreshed (when asked), and a warning when the new certificate is already due. */
async function afterRenewal(ctx: PassContext, result: PassResult, state: AgentState): Promise<void> {
  const { config, log } = ctx;
  if (result.action === 'renewed' && ctx.opts.refreshTrust) await refreshTrust(config, ctx.now(), log);
  if (!state.nextAttempt || !clockSkewed(result, ctx.now())) return;
  log.warn(
    {
      event: 'clock_skew_suspected',
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
  const domains = config.certificate.domains;
  log[level](
    {
      event: 'renewal_failed',
      domains,
      attempt: next.consecutiveFailures,
      error: describeError(err),
      errorKind,
      nextAttempt: next.nextAttempt,
    },
    'renewal failed; keeping the current certificate',
  );
  return next;
}
