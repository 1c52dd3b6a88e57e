/**
 * One renewal pass (`cert-agent renew`, and each check of the daemon):
 * trust → decide → account → key → order → install → reload → state.
 * It never prints; it returns what happened and logs one event per step.
 */
import type { X509Certificate } from 'node:crypto';
import { X509Certificate as X509 } from 'node:crypto';
import type { Config } from './config.js';
import { AgentError, ConfigError, ReloadError, StoreError, TrustError, describeError } from './errors.js';
import { ensurePrivateDir } from './fsutil.js';
import type { Logger } from './log.js';
import { acquireLock } from './lock.js';
import { issueCertificate } from './acme.js';
import { loadOrCreateAccount, saveAccountUrl } from './account.js';
import { generateKeyPem } from './keys.js';
import { openResponder } from './challenge/index.js';
import { waitForChallengeRoute } from './challenge/route-probe.js';
import { installSystemTrust } from './system-trust.js';
import type { CertStore, LiveSet } from './store.js';
import { renewalTimeOf, storeFor, validityOf } from './live.js';
import { auditPermissions } from './permissions.js';
import { bootstrapTrust, fetchRoots, trustFromRootFile } from './trust.js';
import { rootsPem, saveTrust, trustForPins, type TrustBundle } from './trust-file.js';
import { keyMatchesCert, missingNames, verifyChain, certFingerprint } from './x509.js';
import { nextRenewal, randomForSerial, retryDelay, type Random } from './schedule.js';
import { readState, writeState, type AgentState } from './state.js';
import { reloaders, type ReloadOutcome } from './reload/index.js';
import { NginxConfigRejected } from './reload/nginx.js';
import { writeTraefikDynamic } from './reload/traefik.js';

/** More than any CA's backdating: a fresh certificate this old means the clocks disagree. */
const CLOCK_SKEW_MS = 2 * 60 * 60_000;

export interface PassOptions {
  config: Config;
  log: Logger;
  force?: boolean;
  now?: () => Date;
  /** Random source for retry jitter (renewal jitter is fixed per certificate). */
  random?: Random;
}

export interface PassResult {
  action: 'renewed' | 'not-due';
  reason: string;
  live: LiveSet;
  nextRenewal: Date;
  reload?: ReloadOutcome;
}

/** The saved trust for the configured pins, or a fresh bootstrap when there is none (or the pins changed). */
export async function ensureTrust(config: Config, now: Date, log: Logger): Promise<TrustBundle> {
  const saved = trustForPins(config.stateDir, config.ca.fingerprints);
  if (saved) {
    await installSystemTrust(config, saved, log);
    return saved;
  }
  const bundle = config.ca.rootFile ? trustFromRootFile(config.ca.rootFile, config.ca.fingerprints, now) : await bootstrapTrust(config.ca.url, config.ca.fingerprints, now);
  ensurePrivateDir(config.stateDir);
  saveTrust(config.stateDir, bundle);
  log.info({ event: 'trust_bootstrapped', caUrl: config.ca.url, fingerprints: bundle.roots.map((r) => r.fingerprint) }, 'pinned CA root saved');
  await installSystemTrust(config, bundle, log);
  return bundle;
}

/** Why the live set must be replaced now, or undefined when it is good until its renewal time. */
export function renewalReason(live: LiveSet | undefined, config: Config, roots: X509Certificate[], now: Date): string | undefined {
  if (!live) return 'no certificate installed';
  if (live.placeholder) return 'placeholder certificate in use';
  if (!keyMatchesCert(live.keyPem, live.cert)) return 'key does not match the certificate';
  const missing = missingNames(live.cert, config.certificate.domains);
  if (missing.length) return `certificate lacks configured names ${missing.join(', ')}`;
  const chain = verifyChain(live.cert, live.intermediates, roots, now);
  if ('problem' in chain) return `certificate does not verify: ${chain.problem}`;
  const due = nextRenewal(validityOf(live.cert), config.renewal, randomForSerial(live.cert.serialNumber));
  if (now >= due) return `renewal due since ${due.toISOString()}`;
  return undefined;
}

export async function renewPass(opts: PassOptions): Promise<PassResult> {
  const { config, log } = opts;
  const now = opts.now ?? (() => new Date());
  ensurePrivateDir(config.stateDir);
  const release = acquireLock(config.stateDir);
  const state = readState(config.stateDir);
  const store = storeFor(config);
  try {
    auditPermissions(config, store.live(), log);
    const result = await attempt(opts, store, state, now).catch(async (err) => {
      if (!(err instanceof TrustError) || !(await rotateToPinnedRoot(config, now(), log))) throw err;
      return attempt(opts, store, state, now);
    });
    // A certificate issued this moment that is already due, with a notBefore
    // hours in the past by our clock: the clocks disagree (CAs backdate by a
    // minute, at most an hour — more is not backdating).
    const skewed = result.action === 'renewed' && now() >= result.nextRenewal && now().getTime() - validityOf(result.live.cert).notBefore.getTime() > CLOCK_SKEW_MS;
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
    if (skewed) {
      // Renewing again at once would loop against the CA; back off instead, and say why.
      const delay = retryDelay(state.backoffStep - 1, validityOf(result.live.cert), now(), opts.random ?? Math.random);
      state.nextAttempt = new Date(now().getTime() + delay).toISOString();
      log.warn({ event: 'clock_skew_suspected', serial: result.live.cert.serialNumber.toLowerCase(), notBefore: validityOf(result.live.cert).notBefore.toISOString(), nextRenewal: state.nextRenewal, nextAttempt: state.nextAttempt, now: now().toISOString() }, "the new certificate is already due by this machine's clock; check the clocks of this machine and the CA");
    }
    return result;
  } catch (err) {
    await recordFailure(opts, store, state, err, now());
    throw err;
  } finally {
    try {
      writeState(config.stateDir, state);
    } finally {
      release();
    }
  }
}

async function attempt(opts: PassOptions, store: CertStore, state: AgentState, now: () => Date): Promise<PassResult> {
  const { config, log } = opts;
  const trust = await ensureTrust(config, now(), log);
  const roots = trust.roots.map((r) => new X509(r.pem));
  const live = store.live();
  const reason = opts.force ? 'forced' : renewalReason(live, config, roots, now());
  if (!reason && live) {
    const next = renewalTimeOf(live, config);
    log.info({ event: 'renewal_not_due', serial: live.cert.serialNumber.toLowerCase(), notAfter: validityOf(live.cert).notAfter.toISOString(), nextRenewal: next.toISOString() }, 'certificate is good, renewal not due');
    // The certificate is fine but the consumer never took it (a reload that
    // failed after the install): keep reloading until it does, or the proxy
    // serves the old certificate until the next renewal — or past its expiry.
    const reload = state.reload && !state.reload.ok ? await reloadConsumer(config, store, live, state, now, log) : undefined;
    return { action: 'not-due', reason: reload ? 'not due; consumer reloaded' : 'not due', live, nextRenewal: next, ...(reload ? { reload } : {}) };
  }
  log.info({ event: 'renewal_started', domains: config.certificate.domains, reason, attempt: state.consecutiveFailures + 1 }, 'requesting a certificate');

  const account = await loadOrCreateAccount(config.stateDir, config.ca.directory);
  const keyPem = await generateKeyPem(config.certificate.keyType);
  if (config.challenge.mode === 'proxy' && config.reload.target === 'traefik') {
    // Traefik must route the challenge path to us before the CA asks for it.
    writeTraefikDynamic(config, live);
  }
  const responder = await openResponder(config.challenge);
  let issued;
  try {
    if (config.challenge.mode === 'proxy' && config.reload.target === 'traefik' && !(await waitForChallengeRoute(responder, 'http://127.0.0.1:80'))) {
      log.warn({ event: 'challenge_route_not_ready', domains: config.certificate.domains }, 'Traefik does not route the challenge path to the agent yet; asking the CA anyway');
    }
    issued = await issueCertificate({
      directoryUrl: config.ca.directory,
      roots: rootsPem(trust),
      accountKeyPem: account.keyPem,
      accountUrl: account.url,
      ...(config.account.email ? { email: config.account.email } : {}),
      domains: config.certificate.domains,
      certKeyPem: keyPem,
      responder,
      timeoutMs: config.renewal.orderTimeoutSeconds * 1000,
      onEvent: (event, fields) => log.info({ event, ...fields }, event.replace(/_/g, ' ')),
    });
  } finally {
    await responder.close();
  }
  saveAccountUrl(config.stateDir, issued.accountUrl, config.ca.directory);

  const installed = store.install({ keyPem, fullchainPem: issued.fullchainPem, rootsPem: rootsPem(trust) }, { domains: config.certificate.domains, roots, now: now() });
  const next = renewalTimeOf(installed, config);
  const notAfter = validityOf(installed.cert).notAfter.toISOString();
  log.info({ event: 'certificate_installed', domains: config.certificate.domains, serial: installed.cert.serialNumber.toLowerCase(), notAfter, nextRenewal: next.toISOString(), set: installed.id }, 'new certificate is live');

  const reload = await reloadConsumer(config, store, installed, state, now, log);
  return { action: 'renewed', reason: reason ?? 'no certificate installed', live: installed, nextRenewal: next, reload };
}

async function reloadConsumer(config: Config, store: CertStore, live: LiveSet, state: AgentState, now: () => Date, log: Logger): Promise<ReloadOutcome> {
  const target = config.reload.target;
  try {
    const outcome = await reloaders[target]({ config, live, log });
    state.reload = { target, at: now().toISOString(), ok: true, detail: outcome.detail, ...(outcome.servedSerial ? { servedSerial: outcome.servedSerial } : {}) };
    log.info({ event: 'reload_done', target, serial: live.cert.serialNumber.toLowerCase(), detail: outcome.detail }, 'consumer reloaded');
    return outcome;
  } catch (err) {
    let detail = describeError(err);
    if (err instanceof NginxConfigRejected && store.rollback()) detail += '; the previous certificate set was restored';
    state.reload = { target, at: now().toISOString(), ok: false, detail };
    log.error({ event: 'reload_failed', target, serial: live.cert.serialNumber.toLowerCase(), error: detail }, 'reload failed');
    throw err instanceof ReloadError ? new ReloadError(detail) : err;
  }
}

async function recordFailure(opts: PassOptions, store: CertStore, state: AgentState, err: unknown, at: Date): Promise<void> {
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
    state.trust = { ok: false, detail: error, offeredFingerprints: await offeredFingerprints(config), checkedAt: at.toISOString() };
  }
  const level = err instanceof StoreError || err instanceof ConfigError ? 'error' : 'warn';
  log[level]({ event: 'renewal_failed', domains: config.certificate.domains, attempt: state.consecutiveFailures, error, errorKind: kind, nextAttempt: state.nextAttempt }, 'renewal failed; keeping the current certificate');
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
    log.warn({ event: 'trust_rotated', fingerprints: fresh.roots.map((r) => r.fingerprint) }, 'the CA moved to another pinned root; trusting it');
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
