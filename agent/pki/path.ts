/**
 * Path validation of a set the agent installs (never the gate of a TLS
 * connection: OpenSSL decides those). Builds every path leaf → intermediates
 * → one of the pinned roots, trying the other candidates when one fails
 * (bounded in depth and in the number of paths), so the verdict does not
 * depend on the order of the bundle; a path passes when every certificate
 * meets what `openssl verify -x509_strict -purpose sslserver` asks (see
 * docs/internals.md for the few places where this is stricter on purpose).
 * Total: a malformed certificate is a problem, never an exception.
 */
import type { X509Certificate } from 'node:crypto';
import { akiNames, profileProblem, type Position } from './ca-profile.js';
import { KU_KEY_CERT_SIGN, OID, hasBit, malformed, rulesOf, type CertRules } from './cert-rules.js';
import { nameConstraintFinding, NAME_CHECK_MAX, sameName, type Finding } from './name-constraints.js';
import { subjectText } from './subject.js';
import { windowAt, windowProblem } from './validity.js';

/** Certificates below the root in one path, and partial paths tried in all. */
const MAX_DEPTH = 8;
const MAX_STEPS = 1024;

const KU_DIGITAL_SIGNATURE = 0;
const KU_KEY_ENCIPHERMENT = 2;
const KU_KEY_AGREEMENT = 4;
const SERVER_KEY_USAGE = [KU_DIGITAL_SIGNATURE, KU_KEY_ENCIPHERMENT, KU_KEY_AGREEMENT];

const nameOf = subjectText;

/**
 * Checks leaf → intermediates → one of `roots` as a TLS server chain: each
 * signature and validity period at `now`, that every issuer (the root too)
 * is a CA allowed to sign certificates, pathLen and name constraints, that
 * extended key usage (where present) allows TLS servers, the CA profile, and
 * that no certificate carries a critical extension this agent does not
 * understand. Returns the root it ended at, or a reason it failed, phrased
 * for an operator.
 */
export function verifyChain(
  leaf: X509Certificate,
  intermediates: X509Certificate[],
  roots: X509Certificate[],
  now: Date,
): { root: X509Certificate } | { problem: string } {
  try {
    const window = windowProblem(leaf, now);
    if (window) return { problem: `${nameOf(leaf)} ${window.startsWith('expired') ? '' : 'is '}${window}` };
    const search = new Search(leaf, intermediates, roots, now);
    // Iterative deepening: the shortest paths first, then one intermediate more.
    for (let limit = 0; limit <= MAX_DEPTH; limit++) {
      search.cutOff = false;
      const root = search.extend([leaf], limit);
      if (root) return { root };
      if (!search.cutOff || search.steps > MAX_STEPS) break;
    }
    if (search.steps > MAX_STEPS) search.problem ??= `the bundle offers more than ${MAX_STEPS} partial paths to try`;
    else if (search.cutOff) search.problem ??= `certificate chain is longer than ${MAX_DEPTH}`;
    return {
      problem: search.problem ?? `no issuer found for ${nameOf(search.deadEnd)} among the chain and the pinned roots`,
    };
  } catch (err) {
    return { problem: `${nameOf(leaf)} could not be checked: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Depth-first search over the candidates, with the answers it has paid for kept. */
class Search {
  problem: string | undefined;
  deadEnd: X509Certificate;
  /** Partial paths visited, over every depth limit. */
  steps = 0;
  /** Whether the last pass stopped a path at its depth limit. */
  cutOff = false;
  private readonly links = new Map<X509Certificate, Map<X509Certificate, boolean>>();
  private readonly pool: X509Certificate[];

  constructor(
    leaf: X509Certificate,
    intermediates: X509Certificate[],
    private readonly roots: X509Certificate[],
    private readonly now: Date,
  ) {
    this.deadEnd = leaf;
    // The same certificate twice (or the leaf again) adds no path.
    const seen = new Set([leaf.fingerprint256]);
    this.pool = intermediates.filter((c) => !seen.has(c.fingerprint256) && seen.add(c.fingerprint256));
  }

  /** The root of the first passing path through `path` with at most `limit` intermediates, or undefined. */
  extend(path: X509Certificate[], limit: number): X509Certificate | undefined {
    if (++this.steps > MAX_STEPS) return undefined;
    const current = path[path.length - 1]!;
    let found = false;
    for (const root of this.roots) {
      if (!this.issued(current, root)) continue;
      found = true;
      // Shorter paths were judged in earlier passes.
      if (path.length - 1 < limit) continue;
      const problem = pathProblem([...path, root], this.now);
      if (!problem) return root;
      this.problem ??= problem;
    }
    for (const next of this.pool) {
      if (path.includes(next) || !this.issued(current, next)) continue;
      found = true;
      if (path.length - 1 >= limit) {
        this.cutOff = true;
        break;
      }
      const root = this.extend([...path, next], limit);
      if (root || this.steps > MAX_STEPS) return root;
    }
    if (!found && this.deadEnd === path[0]) this.deadEnd = current;
    return undefined;
  }

  /** Names, key identifiers and the signature agree (each pair verified once). */
  private issued(cert: X509Certificate, issuer: X509Certificate): boolean {
    let row = this.links.get(cert);
    if (!row) this.links.set(cert, (row = new Map()));
    let ok = row.get(issuer);
    if (ok === undefined) {
      ok = namesAgree(cert, issuer) && keyIdsAgree(cert, issuer) && issuedBy(cert, issuer, false);
      row.set(issuer, ok);
    }
    return ok;
  }
}

/** The issuer name is the issuer's subject, compared as OpenSSL does (case and white space folded). */
function namesAgree(cert: X509Certificate, issuer: X509Certificate): boolean {
  if (cert.issuer === issuer.subject) return true;
  try {
    return sameName(rulesOf(cert).parts.issuerRdns, rulesOf(issuer).parts.subjectRdns);
  } catch {
    return false;
  }
}

function keyIdsAgree(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return akiNames(rulesOf(cert), rulesOf(issuer));
  } catch {
    return true; // a malformed certificate is refused, with its reason, when its path is judged
  }
}

/**
 * Names match and the signature verifies. Whether the issuer may sign
 * certificates at all is judged on the whole path (pathProblem), so that a
 * refusal names the real reason instead of "no issuer found".
 */
export function issuedBy(cert: X509Certificate, issuer: X509Certificate, checkNames = true): boolean {
  if (checkNames && cert.issuer !== issuer.subject) return false;
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

const positionOf = (i: number, length: number): Position =>
  i === 0 ? 'leaf' : i === length - 1 ? 'root' : 'intermediate';
const KIND: Record<Position, string> = { leaf: 'the certificate', intermediate: 'the intermediate', root: 'the root' };

/** path = [leaf, intermediates..., root], signatures checked: the first rule it breaks, or undefined. */
function pathProblem(path: X509Certificate[], now: Date): string | undefined {
  const rules: CertRules[] = [];
  for (let i = 0; i < path.length; i++) {
    const cert = path[i]!;
    const kind = `${KIND[positionOf(i, path.length)]} ${nameOf(cert)}`;
    const window = windowAt(cert, now) && windowProblem(cert, now);
    if (window) return `${nameOf(cert)} ${window.startsWith('expired') ? '' : 'is '}${window}`;
    try {
      rules.push(rulesOf(cert));
    } catch (err) {
      return `${kind} ${malformed(err).replace(/^it /, '')}`;
    }
    const profile = profileProblem(rules[i]!, positionOf(i, path.length));
    if (profile) return `${kind} ${profile}`;
  }
  for (let i = 0; i < path.length; i++) {
    const problem = certProblem(path, rules, i);
    if (problem) return problem;
  }
  return undefined;
}

/** The rules of path[i] as a leaf or as an issuer of everything below it. */
function certProblem(path: X509Certificate[], rules: CertRules[], i: number): string | undefined {
  const r = rules[i]!;
  const kind = `${KIND[positionOf(i, path.length)]} ${nameOf(path[i]!)}`;
  if (r.unknownCritical.length) {
    const oids = r.unknownCritical.join(', ');
    return `${kind} has a critical extension this agent does not understand (${oids}); TLS clients reject it`;
  }
  // Only serverAuth qualifies: OpenSSL also takes the obsolete server-gated-
  // cryptography purposes (nsSGC, msSGC), which no CA of this agent issues.
  if (r.eku && !r.eku.includes(OID.serverAuth)) {
    return `${kind} is not for TLS servers: its extendedKeyUsage (${r.eku.join(', ')}) lacks serverAuth`;
  }
  if (i === 0) {
    const serverUse = SERVER_KEY_USAGE.some((b) => hasBit(r.keyUsage, b));
    if (r.keyUsage && !serverUse) {
      return `${kind} is not for TLS servers: its keyUsage lacks digitalSignature and keyEncipherment`;
    }
    return undefined;
  }
  const below = nameOf(path[i - 1]!);
  if (!r.ca) return `${kind} is not a CA (no basicConstraints CA:TRUE), yet it signed ${below}`;
  if (r.keyUsage && !hasBit(r.keyUsage, KU_KEY_CERT_SIGN)) {
    return `${kind} may not sign certificates (its keyUsage lacks keyCertSign), yet it signed ${below}`;
  }
  // Intermediates between this CA and the leaf; self-issued ones do not count.
  const cas = path.slice(1, i).filter((c) => c.subject !== c.issuer).length;
  if (r.pathLen !== undefined && cas > r.pathLen) {
    return `${kind} allows ${r.pathLen} intermediate CA(s) below it (pathLen ${r.pathLen}), the chain has ${cas}`;
  }
  if (!r.nameConstraints) return undefined;
  for (let j = 0; j < i; j++) {
    // Self-issued intermediates are not held to the constraints above them (RFC 5280 6.1.3).
    if (j > 0 && path[j]!.subject === path[j]!.issuer) continue;
    const finding = nameConstraintFinding(r.nameConstraints, rules[j]!, j === 0);
    if (finding) return `${kind} ${constraintText(finding)}, yet it is in ${nameOf(path[j]!)}`;
  }
  return undefined;
}

function constraintText(f: Finding): string {
  if (f.kind === 'too-many') {
    const work = `${f.names} names × ${f.constraints} constraints`;
    return `has too many name constraints to check (${work} is over ${NAME_CHECK_MAX}, the limit OpenSSL also applies)`;
  }
  if (f.kind === 'unsupported') return `has name constraints that cannot be checked against ${f.name}`;
  return `may not issue for ${f.name} (name constraints)`;
}
