/**
 * The ca.json the step-ca harness (stepca.ts) writes: one ACME provisioner
 * with the lifetimes and renewal claim a test asks for. Kept apart so the
 * harness's process handling and the CA's configuration each stay readable.
 *
 * What the renewal tests rely on, read in step-ca v0.30.2's sources
 * (github.com/smallstep/certificates at that tag) and checked against the
 * binary the harness runs:
 * - `POST /1.0/rekey` (api/rekey.go) needs a client certificate on the TLS
 *   connection ("missing client certificate", 400, otherwise) and a JSON body
 *   `{"csr": "<PEM>"}` whose signature verifies; it answers 201 with
 *   `{crt, ca, certChain, tlsOptions}`. `POST /1.0/renew` (api/renew.go) is
 *   the same without a body, keeping the key.
 * - The CA's TLS server asks for a client certificate but does not require
 *   one (ca/ca.go: `ClientAuth = tls.VerifyClientCertIfGiven`, `ClientCAs` =
 *   its roots and intermediates). Go verifies a certificate that is sent, for
 *   the clientAuth extended key usage and at the current time: an expired one
 *   ends the handshake with a `certificate_expired` alert, one without
 *   clientAuth or from another CA with `bad_certificate` / `unknown_ca`
 *   (crypto/tls handshake_server.go). So an expired certificate never reaches
 *   the renewal code over mutual TLS.
 * - Authority.Rekey → renewContext (authority/tls.go) first calls
 *   authorizeRenew (authority/authorize.go): revoked → 401; the provisioner
 *   is found by the certificate's provisioner extension, and its
 *   AuthorizeRenew (authority/provisioner/controller.go
 *   DefaultAuthorizeRenew) refuses with 401 when `claims.disableRenewal` is
 *   true ("renew is disabled for provisioner …" in the CA's log; the body is
 *   step-ca's generic `{"status":401,"message":"The request lacked necessary
 *   authorization to be completed. Please see the certificate authority logs
 *   for more info."}`) and when the certificate is expired.
 * - The new certificate copies the old one's subject, names, key usages and
 *   extended key usages (so an ACME leaf's serverAuth + clientAuth carry
 *   over), with the CSR's public key; its lifetime is the old one's
 *   (NotAfter − NotBefore − backdate, the backdate being 1 m), starting now.
 *   A certificate issued with a 20 s `certDuration` is rekeyed to another
 *   20 s one, whatever the provisioner's claims say now.
 * - Errors are rendered as `{"status": N, "message": "…"}` (errs/error.go).
 */
import type { Pki } from './pki.js';

export interface CaJsonOptions {
  port: number;
  pki: Pki;
  dbDir: string;
  provisioner: string;
  min: string;
  def: string;
  /** The ACME provisioner's `claims.disableRenewal`: /1.0/renew and /1.0/rekey answer 401. */
  disableRenewal: boolean;
  netns?: { address: string; dnsNames: string[] };
  policy?: object;
}

/** Go-style duration ("1h30m", "90s", "3m") to milliseconds. */
function durationMs(d: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  const unit: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  let total = 0;
  let consumed = '';
  for (const m of d.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed += m[0];
  }
  if (!consumed || consumed !== d) throw new Error(`unsupported duration: ${d}`);
  return total;
}

export function caJson(o: CaJsonOptions) {
  const max = durationMs(o.def) > durationMs('24h') ? o.def : '24h';
  if (durationMs(o.min) > durationMs(o.def)) throw new Error(`minCertDuration ${o.min} exceeds certDuration ${o.def}`);
  return {
    root: o.pki.rootCrt,
    crt: o.pki.intCrt,
    key: o.pki.intKey,
    address: `${o.netns?.address ?? '127.0.0.1'}:${o.port}`,
    // dnsNames[0] also names the host in ACME links when a request has no
    // Host header; IPs here become IP SANs of step-ca's own TLS certificate.
    dnsNames: o.netns ? [...o.netns.dnsNames, o.netns.address] : ['localhost', '127.0.0.1'],
    logger: { format: 'text' },
    db: { type: 'badgerv2', dataSource: o.dbDir },
    authority: {
      ...(o.policy ? { policy: o.policy } : {}),
      provisioners: [
        {
          type: 'ACME',
          name: o.provisioner,
          claims: {
            minTLSCertDuration: o.min,
            defaultTLSCertDuration: o.def,
            maxTLSCertDuration: max,
            ...(o.disableRenewal ? { disableRenewal: true } : {}),
          },
        },
      ],
    },
  };
}
