/**
 * Certificate facts and checks on Node's built-in X509Certificate: parsing
 * PEM bundles, names, validity, key/certificate match and path validation to
 * the pinned roots. Nothing here trusts the system store.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from './ip.js';
import {
  DerError,
  certificateExtensions,
  expectTag,
  oidText,
  readAll,
  readBoolean,
  readSingle,
  smallUnsigned,
  type Tlv,
} from './der-read.js';
import { fingerprintOfDer } from './fingerprint.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function splitPem(bundle: string): string[] {
  return (bundle.match(PEM_BLOCK) ?? []).map((b) => `${b.trim()}\n`);
}

export function parseCerts(bundle: string): X509Certificate[] {
  return splitPem(bundle).map((pem) => new X509Certificate(pem));
}

export function toPem(cert: X509Certificate): string {
  return cert.toString().trim() + '\n';
}

export function certFingerprint(cert: X509Certificate): string {
  return fingerprintOfDer(cert.raw);
}

export interface CertSummary {
  serial: string;
  subject: string;
  issuer: string;
  names: string[];
  notBefore: Date;
  notAfter: Date;
}

export function summarize(cert: X509Certificate): CertSummary {
  return {
    serial: cert.serialNumber.toLowerCase(),
    subject: subjectText(cert),
    issuer: (cert.issuer ?? '').replace(/\n/g, ', '),
    names: certNames(cert),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
  };
}

/** DNS names and IP addresses from the subjectAltName extension, lower case. */
export function certNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  const names: string[] = [];
  for (const part of san.split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (m?.[2]) names.push(m[1] === 'IP Address' ? normalizeIp(m[2]) : m[2].toLowerCase());
  }
  return names;
}

function normalizeIp(ip: string): string {
  // Node prints IPv6 SANs fully expanded; compare in the canonical URL form.
  return isIP(ip) === 6 ? new URL(`http://[${ip}]`).hostname.replace(/^\[|\]$/g, '') : ip;
}

export function normalizeIdentifier(name: string): string {
  return isIP(name) ? normalizeIp(name) : name.toLowerCase().replace(/\.$/, '');
}

/** Names the configuration asks for that the certificate lacks. */
export function missingNames(cert: X509Certificate, wanted: string[]): string[] {
  const have = new Set(certNames(cert));
  return wanted.map(normalizeIdentifier).filter((n) => !have.has(n));
}

export function keyMatchesCert(keyPem: string, cert: X509Certificate): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/**
 * Builds a path leaf → intermediates → one of `roots` and checks it as a TLS
 * server chain: each signature and validity period at `now`, that every
 * issuer is a CA allowed to sign certificates (the root too), pathLen and
 * name constraints, that extended key usage (where present) allows TLS
 * servers, and that no certificate carries a critical extension this agent
 * does not understand. Returns the root it ended at, or a reason it failed,
 * phrased for an operator.
 */
export function verifyChain(
  leaf: X509Certificate,
  intermediates: X509Certificate[],
  roots: X509Certificate[],
  now: Date,
): { root: X509Certificate } | { problem: string } {
  let current = leaf;
  const path: X509Certificate[] = [leaf];
  const pool = [...intermediates];
  for (let depth = 0; depth < 8; depth++) {
    const window = validityProblem(current, now);
    if (window) return { problem: window };
    const root = roots.find((r) => issuedBy(current, r));
    if (root) {
      const rootWindow = validityProblem(root, now);
      if (rootWindow) return { problem: rootWindow };
      path.push(root);
      const problem = pathProblem(path);
      return problem ? { problem } : { root };
    }
    const idx = pool.findIndex((c) => issuedBy(current, c));
    if (idx < 0) return { problem: `no issuer found for ${nameOf(current)} among the chain and the pinned roots` };
    current = pool.splice(idx, 1)[0] as X509Certificate;
    path.push(current);
  }
  return { problem: 'certificate chain is longer than 8' };
}

const nameOf = subjectText;

/**
 * The subject on one line. A certificate whose first name is too long for a
 * CN has an empty subject (Node then gives undefined): it is named by its
 * subjectAltName instead.
 */
export function subjectText(cert: X509Certificate): string {
  const subject = (cert.subject ?? '').replace(/\n/g, ', ');
  return subject || `(no subject; ${cert.subjectAltName ?? 'no names'})`;
}

/** What a TLS client has to know about each certificate beyond Node's accessors. */
interface CertRules {
  ca: boolean;
  pathLen?: number;
  /** keyUsage bits (bit 0 = digitalSignature is 0x80 of the first byte); undefined when absent. */
  keyUsage?: Buffer;
  eku?: string[];
  nameConstraints?: { permitted: Subtree[]; excluded: Subtree[] };
  dnsNames: string[];
  ips: Buffer[];
  unknownCritical: string[];
}

type Subtree =
  { kind: 'dns'; name: string } | { kind: 'ip'; addr: Buffer; mask: Buffer } | { kind: 'other'; tag: number };

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  nameConstraints: '2.5.29.30',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};
// Critical extensions a verifier may accept without acting on them beyond
// what is checked here (policies constrain nothing this agent relies on).
const UNDERSTOOD = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  '2.5.29.32',
  '2.5.29.33',
  '2.5.29.36',
  '2.5.29.54',
  '2.5.29.14',
  '2.5.29.35',
]);

function rulesOf(cert: X509Certificate): CertRules {
  const rules: CertRules = { ca: false, dnsNames: [], ips: [], unknownCritical: [] };
  for (const ext of certificateExtensions(cert.raw)) {
    if (ext.critical && !UNDERSTOOD.has(ext.oid)) rules.unknownCritical.push(ext.oid);
    const body = () => readAll(expectTag(readSingle(ext.value), 0x30, ext.oid));
    if (ext.oid === OID.basicConstraints) {
      const [first, second] = body();
      if (first?.tag === 0x01) rules.ca = readBoolean(first.body);
      const len = first?.tag === 0x02 ? first : second;
      if (len) rules.pathLen = smallUnsigned(expectTag(len, 0x02, 'pathLenConstraint'));
    } else if (ext.oid === OID.keyUsage) {
      const bits = expectTag(readSingle(ext.value), 0x03, 'keyUsage');
      if (bits.length < 1 || (bits[0] as number) > 7) throw new DerError('keyUsage is not a valid BIT STRING');
      rules.keyUsage = bits.subarray(1);
    } else if (ext.oid === OID.extKeyUsage) {
      rules.eku = body().map((t) => oidText(expectTag(t, 0x06, 'KeyPurposeId')));
    } else if (ext.oid === OID.subjectAltName) {
      for (const name of body()) {
        if (name.tag === 0x82) rules.dnsNames.push(name.body.toString('latin1').toLowerCase());
        if (name.tag === 0x87) rules.ips.push(name.body);
      }
    } else if (ext.oid === OID.nameConstraints) {
      const nc = { permitted: [] as Subtree[], excluded: [] as Subtree[] };
      for (const part of body()) {
        if (part.tag !== 0xa0 && part.tag !== 0xa1) throw new DerError('nameConstraints holds an unknown field');
        for (const sub of readAll(part.body)) (part.tag === 0xa0 ? nc.permitted : nc.excluded).push(subtreeOf(sub));
      }
      rules.nameConstraints = nc;
    }
  }
  return rules;
}

function subtreeOf(tlv: Tlv): Subtree {
  const [base, ...rest] = readAll(expectTag(tlv, 0x30, 'GeneralSubtree'));
  // minimum/maximum must be absent in certificates: refuse rather than ignore.
  if (!base || rest.length) throw new DerError('name constraint with a minimum or maximum');
  if (base.tag === 0x82) return { kind: 'dns', name: base.body.toString('latin1').toLowerCase() };
  if (base.tag === 0x87) {
    const half = base.body.length / 2;
    if (half !== 4 && half !== 16) throw new DerError('IP name constraint is neither IPv4 nor IPv6');
    return { kind: 'ip', addr: base.body.subarray(0, half), mask: base.body.subarray(half) };
  }
  return { kind: 'other', tag: base.tag };
}

/**
 * Why `cert` may not act as a CA (issue certificates), or undefined when it
 * may: basicConstraints CA:TRUE, keyCertSign if it has a keyUsage, and no
 * critical extension this agent does not understand.
 */
export function mayIssueProblem(cert: X509Certificate): string | undefined {
  let r: CertRules;
  try {
    r = rulesOf(cert);
  } catch (err) {
    return `it has a malformed extension (${err instanceof DerError ? err.message : String(err)})`;
  }
  if (r.unknownCritical.length) {
    return `it has a critical extension this agent does not understand (${r.unknownCritical.join(', ')})`;
  }
  if (!r.ca) return 'it is not a CA (no basicConstraints CA:TRUE)';
  if (r.keyUsage && !hasBit(r.keyUsage, KU_KEY_CERT_SIGN)) return 'its keyUsage lacks keyCertSign';
  return undefined;
}

const hasBit = (bits: Buffer | undefined, bit: number) =>
  !!bits && (((bits[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) === 1;
const KU_DIGITAL_SIGNATURE = 0;
const KU_KEY_ENCIPHERMENT = 2;
const KU_KEY_AGREEMENT = 4;
const KU_KEY_CERT_SIGN = 5;
const SERVER_KEY_USAGE = [KU_DIGITAL_SIGNATURE, KU_KEY_ENCIPHERMENT, KU_KEY_AGREEMENT];

/** path = [leaf, intermediates..., root]; signatures and dates are already checked. */
function pathProblem(path: X509Certificate[]): string | undefined {
  const rules: CertRules[] = [];
  for (const cert of path) {
    try {
      rules.push(rulesOf(cert));
    } catch (err) {
      return `${nameOf(cert)} has a malformed extension (${err instanceof DerError ? err.message : String(err)})`;
    }
  }
  for (let i = 0; i < path.length; i++) {
    const cert = path[i]!;
    const r = rules[i]!;
    const who = nameOf(cert);
    const kind = i === 0 ? 'the certificate' : i === path.length - 1 ? 'the root' : 'the intermediate';
    if (r.unknownCritical.length) {
      const oids = r.unknownCritical.join(', ');
      return `${kind} ${who} has a critical extension this agent does not understand (${oids}); TLS clients reject it`;
    }
    if (r.eku && !r.eku.includes(OID.serverAuth)) {
      return `${kind} ${who} is not for TLS servers: its extendedKeyUsage (${r.eku.join(', ')}) lacks serverAuth`;
    }
    if (i === 0) {
      const serverUse = SERVER_KEY_USAGE.some((b) => hasBit(r.keyUsage, b));
      if (r.keyUsage && !serverUse) {
        return `the certificate ${who} is not for TLS servers: its keyUsage lacks digitalSignature and keyEncipherment`;
      }
      continue;
    }
    const below = nameOf(path[i - 1]!);
    if (!r.ca) return `${kind} ${who} is not a CA (no basicConstraints CA:TRUE), yet it signed ${below}`;
    if (r.keyUsage && !hasBit(r.keyUsage, KU_KEY_CERT_SIGN)) {
      return `${kind} ${who} may not sign certificates (its keyUsage lacks keyCertSign), yet it signed ${below}`;
    }
    // Intermediates between this CA and the leaf; self-issued ones do not count.
    const cas = path.slice(1, i).filter((c) => c.subject !== c.issuer).length;
    if (r.pathLen !== undefined && cas > r.pathLen) {
      const allowed = `${r.pathLen} intermediate CA(s) below it (pathLen ${r.pathLen})`;
      return `${kind} ${who} allows ${allowed}, the chain has ${cas}`;
    }
    if (r.nameConstraints) {
      for (let j = 0; j < i; j++) {
        const problem = nameConstraintProblem(r.nameConstraints, path[j]!, rules[j]!, j === 0);
        if (problem) {
          return `${kind} ${who} may not issue for ${problem} (name constraints), yet it is in ${nameOf(path[j]!)}`;
        }
      }
    }
  }
  return undefined;
}

// A common name that looks like a host name is held to DNS constraints too, as TLS clients do.
const HOSTNAME_CN = /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i;

type NameConstraints = NonNullable<CertRules['nameConstraints']>;

/** The first name in `cert` that `nc` forbids, or undefined. */
function nameConstraintProblem(nc: NameConstraints, cert: X509Certificate, r: CertRules, leaf: boolean) {
  const other = [...nc.permitted, ...nc.excluded].find((s) => s.kind === 'other');
  // Constraints on other kinds of names (directory names, e-mail, URIs) are not evaluated: refuse rather than ignore.
  if (other?.kind === 'other') return `names of a kind this agent cannot check (tag 0x${other.tag.toString(16)})`;
  if (!leaf && cert.subject === cert.issuer) return undefined;
  const dns = [...r.dnsNames];
  if (leaf) {
    for (const m of (cert.subject ?? '').matchAll(/^CN=(.*)$/gm)) {
      if (m[1] && HOSTNAME_CN.test(m[1])) dns.push(m[1].toLowerCase());
    }
  }
  for (const name of dns) {
    const excluded = nc.excluded.some((s) => s.kind === 'dns' && dnsWithin(name, s.name));
    const permits = nc.permitted.filter((s) => s.kind === 'dns');
    if (excluded || (permits.length && !permits.some((s) => s.kind === 'dns' && dnsWithin(name, s.name)))) return name;
  }
  for (const ip of r.ips) {
    const excluded = nc.excluded.some((s) => s.kind === 'ip' && ipWithin(ip, s.addr, s.mask));
    const permits = nc.permitted.filter((s) => s.kind === 'ip');
    const permitted = permits.some((s) => s.kind === 'ip' && ipWithin(ip, s.addr, s.mask));
    if (excluded || (permits.length && !permitted)) return ipText(ip);
  }
  return undefined;
}

/** "example.com" covers itself and its subdomains; ".example.com" only the subdomains; "" everything. */
function dnsWithin(name: string, base: string): boolean {
  if (base === '') return true;
  if (base.startsWith('.')) return name.length > base.length && name.endsWith(base);
  return name === base || name.endsWith(`.${base}`);
}

function ipWithin(ip: Buffer, addr: Buffer, mask: Buffer): boolean {
  if (ip.length !== addr.length) return false;
  return [...ip].every((byte, k) => ((byte ^ (addr[k] as number)) & (mask[k] as number)) === 0);
}

function ipText(ip: Buffer): string {
  if (ip.length === 4) return [...ip].join('.');
  return normalizeIp([...Array(8).keys()].map((k) => ip.readUInt16BE(k * 2).toString(16)).join(':'));
}

/**
 * Names match and the signature verifies. Whether the issuer may sign
 * certificates at all is judged on the whole path (pathProblem), so that a
 * refusal names the real reason instead of "no issuer found".
 */
export function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  if (cert.issuer !== issuer.subject) return false;
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function validityProblem(cert: X509Certificate, now: Date): string | undefined {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  const who = subjectText(cert);
  // A fresh certificate that is "not yet valid" or "expired" usually means this
  // machine's clock is off, not the CA: say which clock the verdict used.
  if (now < from)
    return `${who} is not valid before ${from.toISOString()} (this machine's clock says ${now.toISOString()}; check it)`;
  if (now > to) return `${who} expired at ${to.toISOString()} (this machine's clock says ${now.toISOString()})`;
  return undefined;
}

/** The validity window as dates. */
export function validityOf(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}
