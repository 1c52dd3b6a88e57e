/**
 * Profile rules OpenSSL 3.0 (`verify -x509_strict -purpose sslserver`)
 * holds every certificate of a path to, beyond signatures, CA flags and
 * names: key identifier extensions must not be critical, a CA needs a
 * subject, a critical basicConstraints and a keyUsage, only a CA may have
 * keyCertSign, EC keys name their curve (explicit parameters are refused even
 * where Node reports them as the named curve they equal), a root is
 * self-signed by its own authority key identifier too, and a leaf that
 * carries a Netscape certificate type must list SSL server. The key
 * identifiers also decide which certificates may be an issuer at all.
 */
import type { CertRules } from './cert-rules.js';
import { KU_KEY_CERT_SIGN, NS_SSL_SERVER, hasBit } from './cert-rules.js';
import { sameName } from './name-constraints.js';
import { readAll, readSingle } from './der-read.js';

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const KU_CRL_SIGN = 6;

export type Position = 'leaf' | 'intermediate' | 'root';

/** Why a certificate at `position` breaks the profile, phrased after "it", or undefined. */
export function profileProblem(r: CertRules, position: Position): string | undefined {
  if (r.wronglyCritical.length) {
    return `has a critical ${r.wronglyCritical.join(' and a critical ')}, which RFC 5280 forbids and TLS clients refuse`;
  }
  const caProblem = caFlagProblem(r) ?? namesProblem(r, position);
  if (caProblem) return caProblem;
  if (r.parts.keyAlgorithm === EC_PUBLIC_KEY && r.parts.keyParameters?.tag !== 0x06) {
    return 'has an EC key with explicit curve parameters instead of a named curve, which TLS clients refuse';
  }
  if (position === 'root' && !akiNames(r, r)) {
    return 'is not self-signed by its authority key identifier, which names another key, serial or issuer';
  }
  if (position === 'leaf' && r.nsCertType && !hasBit(r.nsCertType, NS_SSL_SERVER)) {
    return 'is not for TLS servers: its Netscape certificate type (nsCertType) lacks SSL server';
  }
  return undefined;
}

/** RFC 5280 4.1.2.6 and 4.2.1.6: a subject or a subjectAltName, as the certificate's role requires. */
function namesProblem(r: CertRules, position: Position): string | undefined {
  const subjectNeeded = position !== 'leaf' || r.ca || hasBit(r.keyUsage, KU_CRL_SIGN) || !r.altNames;
  if (subjectNeeded && r.parts.subjectRdns.length === 0) {
    return position === 'leaf' ? 'has an empty subject and no subjectAltName' : 'is a CA with an empty subject';
  }
  if (r.altNames?.length === 0) return 'has an empty subjectAltName extension';
  if (r.altNames && !r.altNamesCritical && r.parts.subjectRdns.length === 0) {
    return 'has an empty subject and a subjectAltName not marked critical (RFC 5280 asks for critical then)';
  }
  return undefined;
}

/** RFC 5280 4.2.1.3 and 4.2.1.9, as OpenSSL's strict mode holds every certificate of the path to them. */
function caFlagProblem(r: CertRules): string | undefined {
  if (r.pathLen !== undefined && (!r.ca || !hasBit(r.keyUsage, KU_KEY_CERT_SIGN))) {
    return 'has a pathLen constraint but is not a CA allowed to sign certificates (CA:TRUE and keyCertSign)';
  }
  if (!r.ca) {
    return hasBit(r.keyUsage, KU_KEY_CERT_SIGN)
      ? 'is not a CA (no basicConstraints CA:TRUE), yet its keyUsage has keyCertSign'
      : undefined;
  }
  if (!r.basicConstraints?.critical) return 'is a CA whose basicConstraints is not marked critical';
  if (!r.keyUsage) return 'is a CA without a keyUsage extension';
  return undefined;
}

/**
 * Whether `child`'s authority key identifier allows `issuer` as its issuer,
 * as OpenSSL's X509_check_akid: the key id against the issuer's subject key
 * id, the serial against the issuer's serial, a directory name against the
 * issuer's own issuer name. A field that is absent on either side passes.
 */
export function akiNames(child: CertRules, issuer: CertRules): boolean {
  const aki = child.aki;
  if (!aki) return true;
  if (aki.keyId && issuer.ski && !aki.keyId.equals(issuer.ski)) return false;
  if (aki.serial && !aki.serial.equals(issuer.parts.serial)) return false;
  const dirName = aki.issuer?.find((n) => n.tag === 0xa4);
  if (dirName && !sameName(readAll(readSingle(dirName.body).body), issuer.parts.issuerRdns)) return false;
  return true;
}
