/**
 * The acting part of a pass for one certificate: what the decision needs
 * read from the store, and doing what it decided: renew (account, key,
 * order, install), or nothing. Whether the consumer must then take the live
 * set is returned, not done: the pass reloads each consumer once for every
 * certificate that changed (reload-group.ts).
 */
import type { X509Certificate } from 'node:crypto';
import { CaUnavailableError } from '../lib/errors.js';
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
  const { config, log, store } = ctx;
  const attempt = ctx.state.consecutiveFailures + 1;
  const certificate = config.certificate.name;
  log.info(
    { event: 'renewal_started', certificate, domains: config.certificate.domains, reason, attempt },
    'requesting a certificate',
  );
  if (ctx.shared.unreachable) throw ctx.shared.unreachable;
  const account = await loadOrCreateAccount(config.stateDir, config.ca.directory);
  // Generated while the order runs: the key is first needed at finalize.
  const keyPem = generateKeyPem(config.certificate.keyType);
  keyPem.catch(() => undefined); // a failure surfaces where it is awaited
  const issued = await orderCertificate(ctx, { trust, live, account, keyPem }).catch((err: unknown) => {
    if (err instanceof CaUnavailableError) ctx.shared.unreachable = err;
    throw err;
  });
  saveAccountUrl(config.stateDir, issued.accountUrl, config.ca.directory);

  const installed = store.install(
    { keyPem: await keyPem, fullchainPem: issued.fullchainPem, rootsPem: rootsPem(trust) },
    { domains: config.certificate.domains, roots: rootCertificates(trust), now: ctx.now() },
  );
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
    },
    'new certificate is live',
  );
  return { action: 'renewed', reason, live: installed, nextRenewal: next };
}
