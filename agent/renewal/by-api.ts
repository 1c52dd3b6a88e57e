/**
 * A renewal over step-ca's own API, and the fallback to an ACME order: a
 * new key, `/1.0/rekey` with the live certificate as the TLS client
 * certificate, and the answer installed through the same checks as an ACME
 * chain (names, key, chain to the pin, all before anything is written).
 * When the CA refuses or its answer fails those checks, `auto` orders over
 * ACME in the same pass and says why; `step` stops there and keeps the
 * current certificate.
 */
import {
  CaUnavailableError,
  InvalidCertificateError,
  RenewalRefusedError,
  describeError,
  oneLine,
} from '../lib/errors.js';
import { generateKeyPem } from '../pki/keys.js';
import { extraNames, parseCert, parseCerts, toPem } from '../pki/x509.js';
import type { LiveSet } from '../store/sets.js';
import { rekey } from '../stepca/api.js';
import { rootsPem, type TrustBundle } from '../trust/file.js';
import type { PassContext } from './context.js';

/** One request of the API: a CA that answers not at all within this is unavailable, not slow. */
const API_TIMEOUT_MS = 30_000;

/**
 * Renews over the API: the installed set, or why `auto` must fall back to
 * ACME. Throws what cannot fall back: the CA unreachable or not the pinned
 * one, a store failure, or any refusal under `step`.
 */
export async function renewOverApi(
  ctx: PassContext,
  live: LiveSet,
  trust: TrustBundle,
): Promise<LiveSet | { fallback: string }> {
  const { config } = ctx;
  try {
    const newKeyPem = await generateKeyPem(config.certificate.keyType);
    const issued = await rekey({
      caUrl: config.ca.url,
      roots: rootsPem(trust),
      client: { certPem: [live.cert, ...live.intermediates].map(toPem).join(''), keyPem: live.keyPem },
      newKeyPem,
      domains: config.certificate.domains,
      timeoutMs: Math.min(API_TIMEOUT_MS, config.renewal.orderTimeoutSeconds * 1000),
    });
    return install(ctx, trust, { keyPem: newKeyPem, fullchainPem: issued.fullchainPem });
  } catch (err) {
    if (!fallsBack(err, config)) {
      if (err instanceof CaUnavailableError) ctx.shared.unreachable = err;
      throw err;
    }
    const reason = oneLine(describeError(err));
    if (config.renewal.method === 'step') throw stepRefusal(reason);
    return { fallback: reason };
  }
}

/**
 * The answer through the same checks as an ACME chain (names, key, chain to
 * the pin), and one more: no name beyond the configured ones (the API keeps
 * the certificate's names, and the live one carried exactly these).
 */
function install(ctx: PassContext, trust: TrustBundle, set: { keyPem: string; fullchainPem: string }): LiveSet {
  const { config } = ctx;
  const [leaf] = parseCerts(set.fullchainPem);
  const extra = leaf ? extraNames(leaf, config.certificate.domains) : [];
  if (extra.length)
    throw new InvalidCertificateError(
      `the CA's renewal answer carries names that are not configured (${extra.join(', ')}); refusing it`,
    );
  return ctx.store.install(
    { ...set, rootsPem: rootsPem(trust) },
    { domains: config.certificate.domains, roots: trust.roots.map((r) => parseCert(r.pem)), now: ctx.now() },
  );
}

/**
 * Whether an ACME order may follow: the CA refused or answered with nothing
 * installable; or the API's origin was not reached while the ACME directory
 * lives elsewhere (ca.directory set apart). A CA that is not the pinned one
 * (TrustError) or not reached at all would meet the order the same way.
 */
function fallsBack(err: unknown, config: PassContext['config']): boolean {
  if (err instanceof RenewalRefusedError || err instanceof InvalidCertificateError) return true;
  return err instanceof CaUnavailableError && new URL(config.ca.url).origin !== new URL(config.ca.directory).origin;
}

/** `renewal.method: step` and the API would not renew: the pass fails and keeps what is live. */
export function stepRefusal(reason: string): RenewalRefusedError {
  return new RenewalRefusedError(
    `renewal.method is step and the CA's renewal API cannot renew it: ${oneLine(reason)}; the current certificate is kept (renewal.method auto falls back to ACME)`,
  );
}
