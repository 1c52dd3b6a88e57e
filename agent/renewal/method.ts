/**
 * Which way a renewal goes, decided apart from doing it (and from the
 * network): over step-ca's own API with the current certificate as the
 * credential, or by an ACME order. Pure: the live set, the pinned roots, the
 * configured names and the clock in, a way and its reason out, so the rule
 * is tested as a table and `doctor` says the same words.
 *
 * The API renews what the certificate itself proves, so only a certificate
 * that could authenticate a TLS client to this CA qualifies: valid now, with
 * clientAuth, chaining to the pinned roots, its key the live key, and
 * carrying exactly the configured names (the CA's renewal keeps the
 * certificate's names, so changed names need an order). A first issuance is
 * always ACME.
 */
import type { X509Certificate } from 'node:crypto';
import type { RenewalMethod } from '../config/schema.js';
import { assessSet, firstCritical } from '../pki/assess.js';
import { allowsClientAuth } from '../pki/cert-rules.js';
import { extraNames } from '../pki/x509.js';
import type { LiveSet } from '../store/sets.js';

/**
 * `api`: renew over step-ca's API. `acme`: an ACME order; `fallback` says why
 * the API was not used when the setting wanted it. `refused`: the setting is
 * `step` and the API cannot renew this certificate (nothing else is tried).
 */
export type Way = { method: 'api' } | { method: 'acme'; fallback?: string } | { method: 'refused'; reason: string };

export interface MethodInput {
  setting: RenewalMethod;
  live: LiveSet | undefined;
  domains: string[];
  roots: X509Certificate[];
  now: Date;
}

export function chooseWay(input: MethodInput): Way {
  const { setting, live } = input;
  if (setting === 'acme' || !live || live.placeholder) return { method: 'acme' };
  const problem = apiProblem({ ...input, live });
  if (!problem) return { method: 'api' };
  return setting === 'step' ? { method: 'refused', reason: problem } : { method: 'acme', fallback: problem };
}

/** Why step-ca's API cannot renew `live`, or undefined when it can. */
export function apiProblem(input: Omit<MethodInput, 'setting' | 'live'> & { live: LiveSet }): string | undefined {
  const { live, domains, roots, now } = input;
  const critical = firstCritical(assessSet(live, { domains, roots, now }).findings);
  if (critical) return critical.message;
  if (!allowsClientAuth(live.cert))
    return `certificate ${live.cert.serialNumber.toLowerCase()} lacks the clientAuth extended key usage the CA's renewal API authenticates with`;
  const extra = extraNames(live.cert, domains);
  if (extra.length)
    return `certificate ${live.cert.serialNumber.toLowerCase()} carries names no longer configured (${extra.join(', ')}), which the CA's renewal would keep`;
  return undefined;
}
