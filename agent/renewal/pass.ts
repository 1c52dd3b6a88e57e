/**
 * One renewal pass (`cert-agent renew`, and each check of the daemon):
 * trust → decide → account → key → order → install → reload → state.
 * It never prints; it returns what happened and logs one event per step.
 */
import type { X509Certificate } from 'node:crypto';
import { X509Certificate as X509 } from 'node:crypto';
import type { Config } from '../config/config.js';
import {
  AgentError,
  CaProtocolError,
  ConfigError,
  ReloadError,
  StoreError,
  TrustError,
  describeError,
} from '../lib/errors.js';
import { ensurePrivateDir } from '../lib/fs.js';
import type { Logger } from '../lib/log.js';
import { acquireLock } from '../store/lock.js';
import { issueCertificate, type IssueResult } from '../acme/client.js';
import { warmConnection, type WarmConnection } from '../acme/transport.js';
import { accountForDryRun, loadOrCreateAccount, saveAccountUrl, type Account } from '../store/account.js';
import { generateKeyPem } from '../pki/keys.js';
import { openSolver, type Challenge, type Solver } from '../challenge/index.js';
import { installSystemTrust } from '../trust/system-store.js';
import { checkSet, type CertStore, type LiveSet } from '../store/sets.js';
import { storeFor } from '../store/ownership.js';
import { validityOf } from '../pki/x509.js';
import { auditPermissions } from '../store/permissions.js';
import { checkStoreDirectories } from '../store/directories.js';
import { publishedProblems } from '../store/published.js';
import { bootstrapTrust, fetchRoots, trustFromRootFile } from '../trust/pin.js';
import { droppedOnLoad, rootsPem, saveTrust, trustForPins, type TrustBundle } from '../trust/file.js';
import { certFingerprint } from '../pki/x509.js';
import { assessSet, firstCritical } from '../pki/assess.js';
import { renewalTimeOf, retryDelay, type Random } from './schedule.js';
import { readState, writeState, type AgentState } from '../store/state.js';
import { installPlaceholder } from './install-placeholder.js';
import { refreshTrust } from '../trust/refresh.js';
import { DAEMON_PID_FILE } from '../store/layout.js';
import { readIfExists, writeFileAtomic } from '../lib/fs.js';
import { join } from 'node:path';
import { reloadTargets, type ReloadOutcome } from '../reload/index.js';

/** More than any CA's backdating: a fresh certificate this old means the clocks disagree. */
const CLOCK_SKEW_MS = 2 * 60 * 60_000;

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

/** The saved trust for the configured pins, or a fresh bootstrap when there is none (or the pins changed). */
export async function ensureTrust(config: Config, now: Date, log: Logger): Promise<TrustBundle> {
  const saved = trustForPins(config.stateDir, config.ca.fingerprints);
  if (saved) {
    const dropped = droppedOnLoad(saved);
    if (dropped.length) {
      // Heal the file too: what loading dropped must not stay on disk as if trusted.
      saveTrust(config.stateDir, { ...saved, refused: (saved.refused ?? []).filter((r) => !dropped.includes(r)) });
      for (const r of dropped) {
        log.warn(
          { event: 'trust_root_dropped', fingerprint: r.fingerprint, subject: r.subject },
          'trust.json held a root that matches no pin and no cross-signature by a trusted root; no longer trusted',
        );
      }
    }
    await installSystemTrust(config, saved, log);
    return saved;
  }
  const bundle = config.ca.rootFile
    ? trustFromRootFile(config.ca.rootFile, config.ca.fingerprints, now)
    : await bootstrapTrust(config.ca.url, config.ca.fingerprints, now);
  ensurePrivateDir(config.stateDir);
  saveTrust(config.stateDir, bundle);
  log.info(
    { event: 'trust_bootstrapped', caUrl: config.ca.url, fingerprints: bundle.roots.map((r) => r.fingerprint) },
    'pinned CA root saved',
  );
  await installSystemTrust(config, bundle, log);
  return bundle;
}

/** Why the live set must be replaced now, or undefined when it is good until its renewal time. */
export function renewalReason(
  live: LiveSet | undefined,
  config: Config,
  roots: X509Certificate[],
  now: Date,
): string | undefined {
  if (!live) return 'no certificate installed';
  const { findings } = assessSet(live, { domains: config.certificate.domains, roots, now });
  const replaceNow = firstCritical(findings) ?? findings.find((f) => f.code === 'placeholder');
  if (replaceNow) return replaceNow.message;
  const due = renewalTimeOf(live, config);
  if (now >= due) return `renewal due since ${due.toISOString()}`;
  return undefined;
}

export async function renewPass(opts: PassOptions): Promise<PassResult> {
  const { config, log } = opts;
  const now = opts.now ?? (() => new Date());
  checkStoreDirectories(config, log);
  ensurePrivateDir(config.stateDir);
  const release = acquireLock(config.stateDir, opts.daemonPid);
  const state = readState(config.stateDir);
  const store = storeFor(config);
  try {
    if (opts.daemonPid !== undefined) recordDaemon(config.stateDir, opts.daemonPid);
    // Takes back what an older install gave the consumer and refuses what is not ours, before anything is read.
    for (const change of store.secure()) {
      log.warn({ event: 'store_secured', change }, `certificate directory: ${change}`);
    }
    pruneLeftovers(store, log);
    auditPermissions(config, store.live(), log);
    const repaired = repairPublishedNames(store, now(), log);
    const result = await attempt(opts, store, state, now, repaired).catch(async (err) => {
      if (!(err instanceof TrustError) || !(await rotateToPinnedRoot(config, now(), log))) throw err;
      return attempt(opts, store, state, now, repaired);
    });
    // A certificate issued this moment that is already due, with a notBefore
    // hours in the past by our clock: the clocks disagree (CAs backdate by a
    // minute, at most an hour — more is not backdating).
    const skewed =
      result.action === 'renewed' &&
      now() >= result.nextRenewal &&
      now().getTime() - validityOf(result.live.cert).notBefore.getTime() > CLOCK_SKEW_MS;
    Object.assign(state, {
      lastAttempt: { at: now().toISOString(), result: result.action },
      consecutiveFailures: 0,
      backoffStep: skewed ? state.backoffStep + 1 : 0,
      nextRenewal: result.nextRenewal.toISOString(),
      placeholder: result.live.placeholder,
      trust: { ok: true, checkedAt: now().toISOString() },
    } satisfies Partial<AgentState>);
    delete state.nextAttempt;
    if (result.action === 'renewed') state.lastSuccess = now().toISOString();
    if (result.action === 'renewed' && opts.refreshTrust) await refreshTrust(config, now(), log);
    if (skewed) {
      // Renewing again at once would loop against the CA; back off instead, and say why.
      const delay = retryDelay(state.backoffStep - 1, validityOf(result.live.cert), now(), opts.random ?? Math.random);
      state.nextAttempt = new Date(now().getTime() + delay).toISOString();
      log.warn(
        {
          event: 'clock_skew_suspected',
          serial: result.live.cert.serialNumber.toLowerCase(),
          notBefore: validityOf(result.live.cert).notBefore.toISOString(),
          nextRenewal: state.nextRenewal,
          nextAttempt: state.nextAttempt,
          now: now().toISOString(),
        },
        "the new certificate is already due by this machine's clock; check the clocks of this machine and the CA",
      );
    }
    return result;
  } catch (err) {
    await recordFailure(opts, store, state, err, now());
    if (opts.placeholder) await ensureUsableCertificate(config, store, state, err, now(), log);
    throw err;
  } finally {
    try {
      writeState(config.stateDir, state);
    } finally {
      release();
    }
  }
}

async function attempt(
  opts: PassOptions,
  store: CertStore,
  state: AgentState,
  now: () => Date,
  repaired: string[],
): Promise<PassResult> {
  const trust = await ensureTrust(opts.config, now(), opts.log);
  // Likely to renew (forced, a placeholder, the renewal time reached or not
  // known): the CA connection opens now, so its latency overlaps reading the
  // store, the account and the new key.
  const nextRenewal = state.nextRenewal ? Date.parse(state.nextRenewal) : NaN;
  const likely = opts.force || state.placeholder || !(nextRenewal > now().getTime());
  const warm = likely ? warmConnection(opts.config.ca.directory, rootsPem(trust)) : undefined;
  try {
    return await decideAndRenew(opts, store, state, now, repaired, trust, warm);
  } finally {
    warm?.close();
  }
}

async function decideAndRenew(
  opts: PassOptions,
  store: CertStore,
  state: AgentState,
  now: () => Date,
  repaired: string[],
  trust: TrustBundle,
  warm: WarmConnection | undefined,
): Promise<PassResult> {
  const { config, log } = opts;
  const roots = trust.roots.map((r) => new X509(r.pem));
  const live = store.live();
  // A published name whose file the live set lacks is mended by a new set.
  const incomplete = live
    ? publishedProblems(store.dir)
        .filter((p) => p.state === 'dangling')
        .map((p) => p.name)
    : [];
  const lacking = incomplete.length ? `the live set lacks ${incomplete.join(', ')}` : undefined;
  const reason = opts.force ? 'forced' : (renewalReason(live, config, roots, now()) ?? lacking);
  if (!reason && live) {
    const next = renewalTimeOf(live, config);
    log.info(
      {
        event: 'renewal_not_due',
        serial: live.cert.serialNumber.toLowerCase(),
        notAfter: validityOf(live.cert).notAfter.toISOString(),
        nextRenewal: next.toISOString(),
      },
      'certificate is good, renewal not due',
    );
    // The certificate is fine but the consumer never took it (a reload that
    // failed after the install): keep reloading until it does, or the proxy
    // serves the old certificate until the next renewal — or past its expiry.
    // Names just restored may have been serving a copy: the consumer reloads onto the live set.
    const mustReload = (state.reload && !state.reload.ok) || (repaired.length > 0 && config.reload.target !== 'none');
    const reload = mustReload ? await reloadConsumer(config, store, live, state, now, log) : undefined;
    const notes = [...(repaired.length ? [`restored ${repaired.join(', ')}`] : [])];
    if (reload) notes.push('consumer reloaded');
    return {
      action: 'not-due',
      reason: ['not due', ...notes].join('; '),
      live,
      nextRenewal: next,
      ...(reload ? { reload } : {}),
      ...(repaired.length ? { repaired } : {}),
    };
  }
  log.info(
    { event: 'renewal_started', domains: config.certificate.domains, reason, attempt: state.consecutiveFailures + 1 },
    'requesting a certificate',
  );

  const account = await loadOrCreateAccount(config.stateDir, config.ca.directory);
  // Generated while the order runs: the key is first needed at finalize.
  const keyPem = generateKeyPem(config.certificate.keyType);
  keyPem.catch(() => undefined); // a failure surfaces where it is awaited
  const issued = await orderCertificate(opts, trust, live, account, keyPem, warm ? { warm } : {});
  saveAccountUrl(config.stateDir, issued.accountUrl, config.ca.directory);

  const installed = store.install(
    { keyPem: await keyPem, fullchainPem: issued.fullchainPem, rootsPem: rootsPem(trust) },
    { domains: config.certificate.domains, roots, now: now() },
  );
  const next = renewalTimeOf(installed, config);
  const notAfter = validityOf(installed.cert).notAfter.toISOString();
  log.info(
    {
      event: 'certificate_installed',
      domains: config.certificate.domains,
      serial: installed.cert.serialNumber.toLowerCase(),
      notAfter,
      nextRenewal: next.toISOString(),
      set: installed.id,
    },
    'new certificate is live',
  );

  const reload = await reloadConsumer(config, store, installed, state, now, log);
  return {
    action: 'renewed',
    reason: reason ?? 'no certificate installed',
    live: installed,
    nextRenewal: next,
    reload,
  };
}

/**
 * The ACME order of a pass, from opening the challenge to the issued chain,
 * with the self-check of each token: shared by a renewal and a dry run, so
 * that the dry run tests exactly this path. `eventFields` go into every ACME
 * event logged (the dry run marks its own); `warm` is a CA connection opened
 * ahead for the order to adopt.
 */
async function orderCertificate(
  opts: PassOptions,
  trust: TrustBundle,
  live: LiveSet | undefined,
  account: Account,
  keyPem: string | Promise<string>,
  { eventFields = {}, warm }: { eventFields?: Record<string, unknown>; warm?: WarmConnection } = {},
): Promise<IssueResult> {
  const { config, log } = opts;
  const solver = await openSolver(config.challenge, {
    ...(opts.selfCheckPort ? { selfCheckPort: opts.selfCheckPort } : {}),
    ...(config.reload.target === 'nginx' ? { nginx: config.reload.nginx } : {}),
    names: config.certificate.domains,
  });
  // What the agent's own fetch of a token the CA refused found wrong: a
  // warning, and the explanation carried by the CA's error.
  const selfCheckFindings: string[] = [];
  let issued: IssueResult;
  try {
    const target = reloadTargets[config.reload.target];
    const warning = target.prepareChallenge ? await target.prepareChallenge({ config, live, solver, log }) : undefined;
    if (warning)
      log.warn(
        { event: 'challenge_route_not_ready', domains: config.certificate.domains, target: config.reload.target },
        warning,
      );
    issued = await issueCertificate({
      directoryUrl: config.ca.directory,
      roots: rootsPem(trust),
      accountKeyPem: account.keyPem,
      ...(warm ? { warm } : {}),
      ...(account.url ? { accountUrl: account.url } : {}),
      ...(config.account.email ? { email: config.account.email } : {}),
      domains: config.certificate.domains,
      certKeyPem: keyPem,
      solver,
      timeoutMs: config.renewal.orderTimeoutSeconds * 1000,
      onEvent: (event, fields) => log.info({ event, ...eventFields, ...fields }, event.replace(/_/g, ' ')),
      explainRefusal: async (challenge) => {
        const finding = await selfCheck(solver, challenge);
        if (!finding) return;
        selfCheckFindings.push(finding);
        const identifier = challenge.identifier.value;
        const fields = { event: 'challenge_self_check_failed', identifier, type: challenge.type, finding };
        log.warn(fields, 'the CA refused the challenge, and it does not answer here as the CA fetches it either');
      },
    });
  } catch (err) {
    if (err instanceof CaProtocolError && selfCheckFindings.length) {
      throw new CaProtocolError(`${err.message}; ${selfCheckFindings.join('; ')}`, err.problemType, err.httpStatus);
    }
    throw err;
  } finally {
    await solver.close();
  }
  return issued;
}

export interface DryRunResult {
  /** What a real `renew` would do now: the reason to renew, or undefined when it is not due. */
  wouldRenew: string | undefined;
  /** The live set, untouched; undefined when none is installed. */
  live: LiveSet | undefined;
  nextRenewal: Date | undefined;
  /** The certificate the CA issued for the test, checked like an install but never installed. */
  issued: { serial: string; notAfter: Date; names: string[] };
}

/**
 * `renew --dry-run`: the whole path of a renewal (trust, account, challenge,
 * order, the checks an install makes) under the lock, whether or not the
 * certificate is due, and nothing kept: the issued set is checked and
 * dropped, the live set, state.json, trust.json, the account files and the
 * consumer stay as they were, and no reload is done. What is only read
 * stays read: a missing trust.json is bootstrapped in memory, a missing
 * account key is generated in memory. The challenge itself still answers as
 * configured (a listener, a token in the webroot, Traefik's challenge route).
 */
export async function dryRunPass(opts: PassOptions): Promise<DryRunResult> {
  const { config, log } = opts;
  const now = opts.now ?? (() => new Date());
  checkStoreDirectories(config, log, 'dry_run_failed');
  const release = acquireLock(config.stateDir);
  try {
    const saved = trustForPins(config.stateDir, config.ca.fingerprints);
    const trust =
      saved ??
      (config.ca.rootFile
        ? trustFromRootFile(config.ca.rootFile, config.ca.fingerprints, now())
        : await bootstrapTrust(config.ca.url, config.ca.fingerprints, now()));
    const roots = trust.roots.map((r) => new X509(r.pem));
    // A certificate directory a real renew would refuse (a foreign link, another owner) fails the dry run too.
    const live = storeFor(config).live();
    const wouldRenew = renewalReason(live, config, roots, now());
    log.info(
      { event: 'dry_run_started', domains: config.certificate.domains, wouldRenew: wouldRenew ?? null },
      'dry run: test order, nothing is installed',
    );
    const account = await accountForDryRun(config.stateDir, config.ca.directory);
    const keyPem = await generateKeyPem(config.certificate.keyType);
    const issued = await orderCertificate(opts, trust, live, account, keyPem, { eventFields: { dryRun: true } });
    const { domains } = config.certificate;
    const set = { keyPem, fullchainPem: issued.fullchainPem, rootsPem: rootsPem(trust) };
    const { leaf } = checkSet(set, { domains, roots, now: now() });
    const result = {
      wouldRenew,
      live,
      nextRenewal: live ? renewalTimeOf(live, config) : undefined,
      issued: { serial: leaf.serialNumber.toLowerCase(), notAfter: validityOf(leaf).notAfter, names: domains },
    };
    log.info(
      { event: 'dry_run_done', serial: result.issued.serial, notAfter: result.issued.notAfter.toISOString() },
      'dry run: the CA issued a certificate that passes the checks; not installed',
    );
    return result;
  } catch (err) {
    const errorKind = err instanceof AgentError ? err.kind : 'internal';
    const { domains } = config.certificate;
    const fields = { event: 'dry_run_failed', domains, error: describeError(err), errorKind };
    log.warn(fields, 'dry run failed; nothing was changed');
    throw err;
  } finally {
    release();
  }
}

async function reloadConsumer(
  config: Config,
  store: CertStore,
  live: LiveSet,
  state: AgentState,
  now: () => Date,
  log: Logger,
): Promise<ReloadOutcome> {
  const target = config.reload.target;
  try {
    const outcome = await reloadTargets[target].reload({ config, live, log });
    state.reload = {
      target,
      at: now().toISOString(),
      ok: true,
      detail: outcome.detail,
      ...(outcome.servedSerial ? { servedSerial: outcome.servedSerial } : {}),
    };
    log.info(
      { event: 'reload_done', target, serial: live.cert.serialNumber.toLowerCase(), detail: outcome.detail },
      'consumer reloaded',
    );
    return outcome;
  } catch (err) {
    let detail = describeError(err);
    if (err instanceof ReloadError && err.rollback && store.rollback())
      detail += '; the previous certificate set was restored';
    state.reload = { target, at: now().toISOString(), ok: false, detail };
    log.error(
      { event: 'reload_failed', target, serial: live.cert.serialNumber.toLowerCase(), error: detail },
      'reload failed',
    );
    throw err instanceof ReloadError ? new ReloadError(detail) : err;
  }
}

async function recordFailure(
  opts: PassOptions,
  store: CertStore,
  state: AgentState,
  err: unknown,
  at: Date,
): Promise<void> {
  const { config, log } = opts;
  const kind = err instanceof AgentError ? err.kind : 'internal';
  const error = describeError(err);
  state.lastAttempt = { at: at.toISOString(), result: 'failed', error, errorKind: kind };
  if (err instanceof ReloadError) {
    // The certificate itself was renewed; only the consumer failed.
    state.lastSuccess = at.toISOString();
  }
  state.consecutiveFailures += 1;
  let live: LiveSet | undefined;
  try {
    live = store.live();
  } catch {
    live = undefined;
  }
  const usable = live && !live.placeholder ? validityOf(live.cert) : undefined;
  const delay = retryDelay(state.backoffStep, usable, at, opts.random ?? Math.random);
  state.backoffStep += 1;
  state.nextAttempt = new Date(at.getTime() + delay).toISOString();
  if (live) state.nextRenewal = renewalTimeOf(live, config).toISOString();
  if (err instanceof TrustError) {
    state.trust = {
      ok: false,
      detail: error,
      offeredFingerprints: await offeredFingerprints(config),
      checkedAt: at.toISOString(),
    };
  }
  const level = err instanceof StoreError || err instanceof ConfigError ? 'error' : 'warn';
  log[level](
    {
      event: 'renewal_failed',
      domains: config.certificate.domains,
      attempt: state.consecutiveFailures,
      error,
      errorKind: kind,
      nextAttempt: state.nextAttempt,
    },
    'renewal failed; keeping the current certificate',
  );
}

/** The solver's own fetch of a challenge; a self-check that breaks is reported, never fatal. */
async function selfCheck(solver: Solver, challenge: Challenge): Promise<string | undefined> {
  if (!solver.selfCheck) return undefined;
  try {
    return await solver.selfCheck(challenge);
  } catch (err) {
    return `self-check could not run: ${describeError(err)}`;
  }
}

/** daemon.pid names the running daemon for `enroll`, which signals it after rewriting the config. */
function recordDaemon(stateDir: string, pid: number): void {
  const path = join(stateDir, DAEMON_PID_FILE);
  if (readIfExists(path)?.trim() !== String(pid)) writeFileAtomic(path, `${pid}\n`, 0o644);
}

/**
 * The names consumers read must be links into the live set: one that is
 * missing, a regular file copied over it, or pointing elsewhere is put back
 * (a copied file kept beside), logged like permission drift. Runs under the
 * pass's lock; never fails the pass. A name whose file the live set lacks is
 * left to a renewal (see attempt).
 */
function repairPublishedNames(store: CertStore, now: Date, log: Logger): string[] {
  let live: LiveSet | undefined;
  try {
    live = store.live();
  } catch {
    return [];
  }
  if (!live) return [];
  const broken = publishedProblems(store.dir).filter((p) => p.state !== 'dangling');
  if (!broken.length) return [];
  try {
    const done = store.relink(
      broken.map((p) => p.name),
      now,
    );
    for (const p of broken) {
      const keptAs = done.find((d) => d.name === p.name)?.keptAs;
      const kept = keptAs ? `; the file found there is kept as ${keptAs}` : '';
      const fields = { event: 'published_name_repaired', name: p.name, path: p.path, was: p.state };
      Object.assign(fields, keptAs ? { keptAs } : {});
      log.warn(fields, `${p.detail}; restored the link to current/${p.name}${kept}`);
    }
    return broken.map((p) => p.name);
  } catch (err) {
    const names = broken.map((p) => p.name);
    const fields = { event: 'published_name_repair_failed', names, error: describeError(err) };
    log.error(fields, 'cannot restore the names consumers read');
    return [];
  }
}

/** Sets left by an install that was killed before its own prune; never fails the pass. */
function pruneLeftovers(store: CertStore, log: Logger): void {
  try {
    store.prune();
  } catch (err) {
    log.warn({ event: 'prune_failed', error: describeError(err) }, 'could not clean up leftovers');
  }
}

/**
 * The pass failed and nothing usable is live (first start with the CA
 * unreachable, or a certificate that expired during an outage): install the
 * self-signed placeholder so the proxy can start now instead of waiting for
 * the CA. A live certificate that is still valid is never replaced by it.
 */
async function ensureUsableCertificate(
  config: Config,
  store: CertStore,
  state: AgentState,
  cause: unknown,
  now: Date,
  log: Logger,
): Promise<void> {
  let live: LiveSet | undefined;
  try {
    live = store.live();
  } catch {
    live = undefined;
  }
  if (live && now < validityOf(live.cert).notAfter) return;
  try {
    const placed = await installPlaceholder(config, store, now, log);
    state.placeholder = true;
    log.warn(
      {
        event: 'placeholder_installed',
        domains: config.certificate.domains,
        serial: placed.cert.serialNumber.toLowerCase(),
        notAfter: validityOf(placed.cert).notAfter.toISOString(),
        error: describeError(cause),
      },
      'CA not reached: serving a self-signed placeholder until it answers',
    );
  } catch (err) {
    log.error(
      { event: 'placeholder_failed', error: describeError(err) },
      'could not install a placeholder certificate',
    );
  }
}

/**
 * The CA no longer chains to the roots we trust. If it now serves a root that
 * is among the configured pins (a planned rotation: both fingerprints were
 * pinned), bootstrap again — with the same proof as at first contact — and
 * keep the old roots too. Anything else stays a trust failure for the operator.
 */
async function rotateToPinnedRoot(config: Config, now: Date, log: Logger): Promise<boolean> {
  if (config.ca.rootFile || config.ca.fingerprints.length < 2) return false;
  try {
    const fresh = await bootstrapTrust(config.ca.url, config.ca.fingerprints, now);
    const old = trustForPins(config.stateDir, config.ca.fingerprints);
    const known = new Set(fresh.roots.map((r) => r.fingerprint));
    fresh.roots.push(...(old?.roots ?? []).filter((r) => !known.has(r.fingerprint)));
    saveTrust(config.stateDir, fresh);
    log.warn(
      { event: 'trust_rotated', fingerprints: fresh.roots.map((r) => r.fingerprint) },
      'the CA moved to another pinned root; trusting it',
    );
    return true;
  } catch {
    return false;
  }
}

/** What the CA offers now, for the operator's information only: never trusted. */
async function offeredFingerprints(config: Config): Promise<string[]> {
  try {
    return (await fetchRoots(config.ca.url, { insecureFirstContact: true })).map(certFingerprint);
  } catch {
    return [];
  }
}
