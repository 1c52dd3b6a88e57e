/**
 * What a cross-certificate limits, compared with the root it vouches for.
 * A trusted root that cross-signs a new root vouches for it only within the
 * cross-certificate's limits (pathLen, key and extended key usage, name and
 * policy constraints); adopting the new root as an anchor of its own would
 * drop every one of them. So the trust refresh adopts a root only when the
 * cross-certificate limits nothing that the root itself does not limit at
 * least as much:
 *
 * - basicConstraints pathLen: absent on the cross, or the root's is at most the cross's;
 * - keyUsage: absent on the cross, or the root's bits are a subset of the cross's;
 * - extendedKeyUsage: absent on the cross or with anyExtendedKeyUsage, or the
 *   root's purposes are a subset of the cross's (and not "any");
 * - nameConstraints, policy extensions (policies other than anyPolicy,
 *   policy mappings, policy constraints, inhibitAnyPolicy) and Netscape's
 *   certificate type: absent on the cross, or the root carries the very same
 *   extension (the agent does not judge whether one set of subtrees or
 *   policies is narrower than another; identical is the only safe answer);
 * - any other critical extension on the cross: never (a limit the agent
 *   cannot compare).
 *
 * The trusted root that signed the cross-certificate limits the new root as
 * much: its nameConstraints and policy extensions, its extendedKeyUsage (the
 * same rules as above) and its pathLen, less one unless the cross-certificate
 * is self-issued. A root anchored below a constrained root must carry those
 * limits itself, or it would be a way around them.
 *
 * Validity is not compared: the cross-certificate must be valid when the
 * root is adopted, but a rotation exists to outlive the old root, so the new
 * root stays trusted for its own lifetime.
 */
import type { X509Certificate } from 'node:crypto';
import { issuedBy } from '../pki/x509.js';
import {
  DerError,
  certificateExtensions,
  expectTag,
  oidText,
  readAll,
  readBoolean,
  readSingle,
  smallUnsigned,
  type Extension,
} from '../pki/der-read.js';

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  anyExtendedKeyUsage: '2.5.29.37.0',
  certificatePolicies: '2.5.29.32',
  anyPolicy: '2.5.29.32.0',
};

/** Extensions whose presence on the cross limits the root unless the root carries the same one. */
const SAME_OR_NOTHING: Record<string, string> = {
  '2.5.29.30': 'nameConstraints',
  '2.5.29.32': 'certificatePolicies',
  '2.5.29.33': 'policyMappings',
  '2.5.29.36': 'policyConstraints',
  '2.5.29.54': 'inhibitAnyPolicy',
  '2.16.840.1.113730.1.1': 'Netscape certificate type',
};

/** Critical extensions of a cross-certificate that limit nothing (identifiers and names). */
const HARMLESS = new Set(['2.5.29.14', '2.5.29.35', '2.5.29.17', '2.5.29.18']);

/**
 * Why adopting `root` on the strength of `cross` would drop a limit of the
 * cross-certificate or of the trusted root that signed it, or undefined when
 * it would not. `cross` is already known to carry `root`'s subject and key
 * and the signature of one of `trusted`.
 */
export function crossLimitsProblem(
  cross: X509Certificate,
  root: X509Certificate,
  trusted: X509Certificate[],
): string | undefined {
  const signers = trusted.filter((t) => t !== root && issuedBy(cross, t));
  let first: string | undefined;
  for (const signer of signers) {
    const problem = limitsProblem(cross, root, signer);
    if (problem === undefined) return undefined;
    first ??= problem;
  }
  return first ?? 'no trusted root signed the cross-certificate';
}

const BY_CROSS = 'the cross-certificate';
const BY_SIGNER = 'the trusted root that signed it';

function limitsProblem(cross: X509Certificate, root: X509Certificate, signer: X509Certificate): string | undefined {
  try {
    const [c, r, t] = [byOid(cross), byOid(root), byOid(signer)];
    return (
      pathLenProblem(c, r) ??
      keyUsageProblem(c, r) ??
      extKeyUsageProblem(c, r, BY_CROSS) ??
      sameOrNothingProblem(c, r, BY_CROSS) ??
      unknownCriticalProblem(c) ??
      signerPathLenProblem(t, r, cross.subject === cross.issuer) ??
      extKeyUsageProblem(t, r, BY_SIGNER) ??
      sameOrNothingProblem(t, r, BY_SIGNER)
    );
  } catch (err) {
    return `a malformed extension (${err instanceof DerError ? err.message : String(err)})`;
  }
}

function byOid(cert: X509Certificate): Map<string, Extension> {
  return new Map(certificateExtensions(cert.raw).map((e) => [e.oid, e]));
}

function pathLen(ext: Extension | undefined): number | undefined {
  if (!ext) return undefined;
  const [first, second] = readAll(expectTag(readSingle(ext.value), 0x30, 'basicConstraints'));
  if (first?.tag === 0x01) readBoolean(first.body);
  const len = first?.tag === 0x02 ? first : second;
  return len ? smallUnsigned(expectTag(len, 0x02, 'pathLenConstraint')) : undefined;
}

function pathLenProblem(c: Map<string, Extension>, r: Map<string, Extension>): string | undefined {
  const limit = pathLen(c.get(OID.basicConstraints));
  if (limit === undefined) return undefined;
  const own = pathLen(r.get(OID.basicConstraints));
  if (own !== undefined && own <= limit) return undefined;
  return `pathLen ${limit} on the cross-certificate, ${own === undefined ? 'none' : `pathLen ${own}`} on the root`;
}

/** The signer's pathLen reaches one level less below the cross-certificate, unless that is self-issued. */
function signerPathLenProblem(
  t: Map<string, Extension>,
  r: Map<string, Extension>,
  selfIssued: boolean,
): string | undefined {
  const limit = pathLen(t.get(OID.basicConstraints));
  if (limit === undefined) return undefined;
  const below = selfIssued ? limit : limit - 1;
  const own = pathLen(r.get(OID.basicConstraints));
  if (own !== undefined && own <= below) return undefined;
  return `pathLen ${limit} on ${BY_SIGNER} (${below} below the cross-certificate), ${own === undefined ? 'none' : `pathLen ${own}`} on the root`;
}

/** keyUsage bits as a number (bit 0, digitalSignature, is the highest of the first byte). */
function keyUsageBits(ext: Extension | undefined): number | undefined {
  if (!ext) return undefined;
  const bits = expectTag(readSingle(ext.value), 0x03, 'keyUsage');
  if (bits.length < 1 || (bits[0] as number) > 7) throw new DerError('keyUsage is not a valid BIT STRING');
  return [...bits.subarray(1, 3)].reduce((acc, b, i) => acc | (b << (8 * (1 - i))), 0);
}

function keyUsageProblem(c: Map<string, Extension>, r: Map<string, Extension>): string | undefined {
  const limit = keyUsageBits(c.get(OID.keyUsage));
  if (limit === undefined) return undefined;
  const own = keyUsageBits(r.get(OID.keyUsage));
  if (own !== undefined && (own & ~limit) === 0) return undefined;
  return `keyUsage narrower on the cross-certificate than on the root${own === undefined ? ' (which has none: any use)' : ''}`;
}

function purposes(ext: Extension | undefined): string[] | undefined {
  if (!ext) return undefined;
  return readAll(expectTag(readSingle(ext.value), 0x30, 'extendedKeyUsage')).map((t) =>
    oidText(expectTag(t, 0x06, 'KeyPurposeId')),
  );
}

function extKeyUsageProblem(c: Map<string, Extension>, r: Map<string, Extension>, where: string): string | undefined {
  const limit = purposes(c.get(OID.extKeyUsage));
  if (!limit || limit.includes(OID.anyExtendedKeyUsage)) return undefined;
  const own = purposes(r.get(OID.extKeyUsage));
  if (own && !own.includes(OID.anyExtendedKeyUsage) && own.every((p) => limit.includes(p))) return undefined;
  return `extendedKeyUsage ${limit.join(', ')} on ${where}, ${own ? own.join(', ') : 'none'} on the root`;
}

function onlyAnyPolicy(ext: Extension): boolean {
  const policies = readAll(expectTag(readSingle(ext.value), 0x30, 'certificatePolicies'));
  return policies.every((p) => {
    const [id] = readAll(expectTag(p, 0x30, 'PolicyInformation'));
    return !!id && oidText(expectTag(id, 0x06, 'policyIdentifier')) === OID.anyPolicy;
  });
}

function sameOrNothingProblem(c: Map<string, Extension>, r: Map<string, Extension>, where: string): string | undefined {
  for (const [oid, name] of Object.entries(SAME_OR_NOTHING)) {
    const limit = c.get(oid);
    if (!limit || (oid === OID.certificatePolicies && onlyAnyPolicy(limit))) continue;
    const own = r.get(oid);
    if (!own?.value.equals(limit.value)) {
      return `${name} on ${where} that the root ${own ? 'carries differently' : 'does not carry'}`;
    }
  }
  return undefined;
}

function unknownCriticalProblem(c: Map<string, Extension>): string | undefined {
  const compared = new Set([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, ...Object.keys(SAME_OR_NOTHING)]);
  const unknown = [...c.values()].filter((e) => e.critical && !compared.has(e.oid) && !HARMLESS.has(e.oid));
  return unknown.length
    ? `a critical extension on the cross-certificate the agent cannot compare (${unknown.map((e) => e.oid).join(', ')})`
    : undefined;
}
