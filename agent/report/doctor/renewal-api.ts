/**
 * `doctor`: can the live certificate be renewed over the CA's own API
 * (step-ca's /1.0/rekey, no challenge, no port 80)? Whether it carries the
 * clientAuth usage the API authenticates with, whether the rule of the
 * renewal (renewal/method.ts) lets it, and whether the CA accepts it: one
 * `/1.0/renew` with the certificate as the TLS client certificate, whose
 * answer is checked as an install would check it and dropped (nothing
 * installed, nothing written; the CA records one more issued certificate).
 *
 * With renewal.method auto a certificate the API cannot renew is a warning
 * (each renewal is then an ACME order, which needs the challenge path); with
 * step it is a problem (renewals fail).
 */
import { CaUnavailableError, TrustError, describeError, oneLine } from '../../lib/errors.js';
import { allowsClientAuth } from '../../pki/cert-rules.js';
import { parseCert, toPem } from '../../pki/x509.js';
import { apiProblem } from '../../renewal/method.js';
import { renew } from '../../stepca/api.js';
import { checkSet } from '../../store/sets.js';
import { rootsPem, trustForPins } from '../../trust/file.js';
import { liveSetQuietly } from './certificate.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

const REASON = 'renewal API';

export async function checkRenewalApi({ config, now }: DoctorContext): Promise<Diagnosis[]> {
  const method = config.renewal.method;
  if (method === 'acme')
    return [diagnosis('ok', REASON, 'not used: renewal.method is acme (every renewal is an ACME order)')];
  const live = liveSetQuietly(config);
  // The trust a pass would use: none when the pins changed since it was saved (the CA line says so).
  const trust = trustForPins(config.stateDir, config.ca.fingerprints);
  // No certificate from the CA yet, or no trust: the certificate and CA lines say so; the first one is ACME anyway.
  if (!live || live.placeholder || !trust) return [];
  const serial = live.cert.serialNumber.toLowerCase();
  const eku = allowsClientAuth(live.cert)
    ? diagnosis('ok', 'client auth', `certificate ${serial} may authenticate a TLS client (clientAuth)`)
    : unusable(method, 'client auth', `certificate ${serial} lacks the clientAuth extended key usage`);
  const roots = trust.roots.map((r) => parseCert(r.pem));
  const problem = apiProblem({ live, domains: config.certificate.domains, roots, now });
  if (problem) return [eku, unusable(method, REASON, problem)];
  try {
    const answer = await renew({
      caUrl: config.ca.url,
      roots: rootsPem(trust),
      client: { certPem: [live.cert, ...live.intermediates].map(toPem).join(''), keyPem: live.keyPem },
      timeoutMs: 15_000,
    });
    // The answer judged as an install would judge it (same key: /1.0/renew keeps it); nothing is written.
    checkSet(
      { keyPem: live.keyPem, fullchainPem: answer.fullchainPem, rootsPem: [] },
      { domains: config.certificate.domains, roots, now },
    );
    const ok = `${config.ca.url} renews certificate ${serial} over its API (one test renewal, checked and dropped)`;
    return [eku, diagnosis('ok', REASON, ok)];
  } catch (err) {
    const what = `${config.ca.url}: ${oneLine(describeError(err))}`;
    // Neither falls back: an ACME order would meet the same CA (the CA line says more).
    if (err instanceof TrustError || err instanceof CaUnavailableError)
      return [eku, diagnosis('PROBLEM', REASON, `${what}: renewals fail until the CA is reachable and trusted`)];
    return [eku, unusable(method, REASON, what)];
  }
}

function unusable(method: 'auto' | 'step', reason: string, what: string): Diagnosis {
  return method === 'step'
    ? diagnosis('PROBLEM', reason, `${what}: renewals fail with renewal.method step; set it to auto or acme`)
    : diagnosis(
        'WARN',
        reason,
        `${what}: each renewal falls back to an ACME order (the challenge path, e.g. port 80, is needed)`,
      );
}
