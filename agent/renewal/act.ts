/**
 * The acting part of a pass for one certificate: what the decision needs
 * read from the store, and doing what it decided: renew (account, key,
 * order, install), or nothing. Whether the consumer must then take the live
 * set is returned, not done: the pass reloads each consumer once for every
 * certificate that changed (reload-group.ts).
 */
import type { X509Certificate } from 'node:crypto';
import { AgentError, CaUnavailableError } from '../lib/errors.js';
import { loadOrCreateAccount, saveAccountUrl } from '../store/account.js';
import { assessSet } from '../pki/assess.js';
import { generateKeyPem } from '../pki/keys.js';
import { parseCert, validityOf } from '../pki/x509.js';
import { publishedProblems } from '../store/published.js';
import type { CertStore, LiveSet } from '../store/sets.js';
import { rootsPem, type TrustBundle } from '../trust/file.js';
import type { Acted, PassContext, PassResult } from './context.js';

export type { Acted } from './context.js';
import { publishedNeeds, type Decision, type DecisionInput } from './decide.js';
import { renewOverApi, stepRefusal } from './by-api.js';
import { chooseWay } from './method.js';
import { orderCertificate } from './order.js';
import { renewalTimeOf } from './schedule.js';

/** What the decision is taken on, read from the store; `restored` is what this pass's upkeep put back. */
export function observe(
  store: CertStore,
  expect: { domains: string[]; roots: X509Certificate[]; now: Date },
  restored?: string[],
  read?: { live: LiveSet | undefined; problems?: ReturnType<typeof publishedProblems> },
): Pick<DecisionInput, 'live' | 'findings' | 'published'> & { live: LiveSet | undefined } {
  // What the store upkeep of this pass just read, or read now.
  const live = read ? read.live : store.live();
  if (!live) return { live, findings: [], published: { lacking: [], restored: [] } };
  const needs = publishedNeeds(read?.problems ?? publishedProblems(store.dir));
  const published = restored ? { lacking: needs.lacking, restored } : needs;
  return { live, findings: assessSet(live, expect).findings, published };
}

/** The roots of a trust bundle as certificates. */
export function rootCertificates(trust: TrustBundle): X509Certificate[] {
  return trust.roots.map((r) => parseCert(r.pem));
}

/** Does what the decision says. */
export async function act(
  ctx: PassContext,
  decision: Decision,
  live: LiveSet | undefined,
  trust: TrustBundle,
): Promise<Acted> {
  if (decision.action === 'renew') return { result: await renew(ctx, decision.reason, live, trust), reload: true };
  const set = live as LiveSet; // only a renewal is decided without a live set
  ctx.log.info(
    {
      event: 'renewal_not_due',
      certificate: ctx.config.certificate.name,
      serial: set.cert.serialNumber.toLowerCase(),
      notAfter: validityOf(set.cert).notAfter.toISOString(),
      nextRenewal: decision.next.toISOString(),
    },
    'certificate is good, renewal not due',
  );
  const { repaired } = ctx;
  const result: PassResult = {
    action: 'not-due',
    reason: decision.reason,
    live: set,
    nextRenewal: decision.next,
    ...(repaired.length ? { repaired } : {}),
  };
  return { result, reload: decision.action === 'reload' };
}

async function renew(
  ctx: PassContext,
  reason: string,
  live: LiveSet | undefined,
  trust: TrustBundle,
): Promise<PassResult> {
  const { config, log } = ctx;
  const certificate = config.certificate.name;
  const way = chooseWay({
    setting: config.renewal.method,
    live,
    domains: config.certificate.domains,
    roots: rootCertificates(trust),
    now: ctx.now(),
  });
  log.info(
    {
      event: 'renewal_started',
      certificate,
      domains: config.certificate.domains,
      reason,
      attempt: ctx.state.consecutiveFailures + 1,
      method: way.method === 'acme' ? 'acme' : 'step',
    },
    'requesting a certificate',
  );
  if (ctx.shared.unreachable) throw ctx.shared.unreachable;
  if (way.method === 'refused') throw stepRefusal(way.reason);
  let fallback = way.method === 'acme' ? way.fallback : undefined;
  let installed: LiveSet | undefined;
  if (way.method === 'api') {
    const got = await renewOverApi(ctx, live as LiveSet, trust);
    if ('fallback' in got) fallback = got.fallback;
    else installed = got;
  }
  if (fallback)
    log.warn(
      { event: 'renewal_fallback', certificate, reason: fallback },
      "renewing by an ACME order: the CA's renewal API cannot renew this certificate",
    );
  const method = installed ? 'step' : 'acme';
  installed ??= await renewOverAcme(ctx, live, trust).catch((err: unknown) => {
    // The order failed too: its error carries why it was an order, for state.json and status.
    if (fallback && err instanceof AgentError)
      err.message = `${err.message} (an ACME order because the CA's renewal API could not renew: ${fallback})`;
    throw err;
  });
  const next = renewalTimeOf(installed, config);
  log.info(
    {
      event: 'certificate_installed',
      certificate,
      domains: config.certificate.domains,
      serial: installed.cert.serialNumber.toLowerCase(),
      notAfter: validityOf(installed.cert).notAfter.toISOString(),
      nextRenewal: next.toISOString(),
      set: installed.id,
      method,
    },
    'new certificate is live',
  );
  return { action: 'renewed', reason, live: installed, nextRenewal: next, method, ...(fallback ? { fallback } : {}) };
}

/** An ACME order for a new key, and its chain installed. */
async function renewOverAcme(ctx: PassContext, live: LiveSet | undefined, trust: TrustBundle): Promise<LiveSet> {
  const { config, store } = ctx;
  const account = await loadOrCreateAccount(config.stateDir, config.ca.directory);
  // Generated while the order runs: the key is first needed at finalize.
  const keyPem = generateKeyPem(config.certificate.keyType);
  keyPem.catch(() => undefined); // a failure surfaces where it is awaited
  const issued = await orderCertificate(ctx, { trust, live, account, keyPem }).catch((err: unknown) => {
    if (err instanceof CaUnavailableError) ctx.shared.unreachable = err;
    throw err;
  });
  saveAccountUrl(config.stateDir, issued.accountUrl, config.ca.directory);
  return store.install(
    { keyPem: await keyPem, fullchainPem: issued.fullchainPem, rootsPem: rootsPem(trust) },
    { domains: config.certificate.domains, roots: rootCertificates(trust), now: ctx.now() },
  );
}
