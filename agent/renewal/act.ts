/**
 * The acting part of a pass: what the decision needs read from the store,
 * and doing what it decided: renew (account, key, order, install, reload),
 * reload the consumer onto the live set, or nothing. Every step takes the
 * pass's context; what the reload recorded is left in it for state.json.
 */
import { X509Certificate } from 'node:crypto';
import { loadOrCreateAccount, saveAccountUrl } from '../store/account.js';
import { ReloadError, describeError } from '../lib/errors.js';
import { assessSet } from '../pki/assess.js';
import { generateKeyPem } from '../pki/keys.js';
import { validityOf } from '../pki/x509.js';
import { reloadTargets, type ReloadOutcome } from '../reload/index.js';
import { publishedProblems } from '../store/published.js';
import type { CertStore, LiveSet } from '../store/sets.js';
import { rootsPem, type TrustBundle } from '../trust/file.js';
import type { PassContext, PassResult } from './context.js';
import { publishedNeeds, type Decision, type DecisionInput } from './decide.js';
import { orderCertificate } from './order.js';
import { renewalTimeOf } from './schedule.js';

/** What the decision is taken on, read from the store; `restored` is what this pass's upkeep put back. */
export function observe(
  store: CertStore,
  expect: { domains: string[]; roots: X509Certificate[]; now: Date },
  restored?: string[],
): Pick<DecisionInput, 'live' | 'findings' | 'published'> & { live: LiveSet | undefined } {
  const live = store.live();
  if (!live) return { live, findings: [], published: { lacking: [], restored: [] } };
  const needs = publishedNeeds(publishedProblems(store.dir));
  const published = restored ? { lacking: needs.lacking, restored } : needs;
  return { live, findings: assessSet(live, expect).findings, published };
}

/** The roots of a trust bundle as certificates. */
export function rootCertificates(trust: TrustBundle): X509Certificate[] {
  return trust.roots.map((r) => new X509Certificate(r.pem));
}

/** Does what the decision says. */
export async function act(
  ctx: PassContext,
  decision: Decision,
  live: LiveSet | undefined,
  trust: TrustBundle,
): Promise<PassResult> {
  if (decision.action === 'renew') return renew(ctx, decision.reason, live, trust);
  const set = live as LiveSet; // only a renewal is decided without a live set
  ctx.log.info(
    {
      event: 'renewal_not_due',
      serial: set.cert.serialNumber.toLowerCase(),
      notAfter: validityOf(set.cert).notAfter.toISOString(),
      nextRenewal: decision.next.toISOString(),
    },
    'certificate is good, renewal not due',
  );
  const reload = decision.action === 'reload' ? await reloadConsumer(ctx, set) : undefined;
  const { repaired } = ctx;
  return {
    action: 'not-due',
    reason: reload ? `${decision.reason}; consumer reloaded` : decision.reason,
    live: set,
    nextRenewal: decision.next,
    ...(reload ? { reload } : {}),
    ...(repaired.length ? { repaired } : {}),
  };
}

async function renew(
  ctx: PassContext,
  reason: string,
  live: LiveSet | undefined,
  trust: TrustBundle,
): Promise<PassResult> {
  const { config, log, store } = ctx;
  const attempt = ctx.state.consecutiveFailures + 1;
  log.info(
    { event: 'renewal_started', domains: config.certificate.domains, reason, attempt },
    'requesting a certificate',
  );
  const account = await loadOrCreateAccount(config.stateDir, config.ca.directory);
  // Generated while the order runs: the key is first needed at finalize.
  const keyPem = generateKeyPem(config.certificate.keyType);
  keyPem.catch(() => undefined); // a failure surfaces where it is awaited
  const issued = await orderCertificate(ctx, { trust, live, account, keyPem });
  saveAccountUrl(config.stateDir, issued.accountUrl, config.ca.directory);

  const installed = store.install(
    { keyPem: await keyPem, fullchainPem: issued.fullchainPem, rootsPem: rootsPem(trust) },
    { domains: config.certificate.domains, roots: rootCertificates(trust), now: ctx.now() },
  );
  const next = renewalTimeOf(installed, config);
  log.info(
    {
      event: 'certificate_installed',
      domains: config.certificate.domains,
      serial: installed.cert.serialNumber.toLowerCase(),
      notAfter: validityOf(installed.cert).notAfter.toISOString(),
      nextRenewal: next.toISOString(),
      set: installed.id,
    },
    'new certificate is live',
  );
  const reload = await reloadConsumer(ctx, installed);
  return { action: 'renewed', reason, live: installed, nextRenewal: next, reload };
}

/** Makes the consumer take `live` and proves it; a refused set is rolled back when the target says so. */
async function reloadConsumer(ctx: PassContext, live: LiveSet): Promise<ReloadOutcome> {
  const { config, log, store } = ctx;
  const target = config.reload.target;
  const serial = live.cert.serialNumber.toLowerCase();
  try {
    const outcome = await reloadTargets[target].reload({ config, live, log });
    const at = ctx.now().toISOString();
    const served = outcome.servedSerial ? { servedSerial: outcome.servedSerial } : {};
    ctx.reloaded = { target, at, ok: true, detail: outcome.detail, ...served };
    log.info({ event: 'reload_done', target, serial, detail: outcome.detail }, 'consumer reloaded');
    return outcome;
  } catch (err) {
    let detail = describeError(err);
    if (err instanceof ReloadError && err.rollback && store.rollback())
      detail += '; the previous certificate set was restored';
    ctx.reloaded = { target, at: ctx.now().toISOString(), ok: false, detail };
    log.error({ event: 'reload_failed', target, serial, error: detail }, 'reload failed');
    throw err instanceof ReloadError ? new ReloadError(detail) : err;
  }
}
