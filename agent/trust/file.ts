/**
 * The pinned roots on disk (trust.json in the state directory), and the rule
 * for what may be in it: a root that matches a pin, or a self-signed CA that
 * a root already trusted has cross-signed (a CA rotating its root) without
 * limits the root does not carry itself (cross-limits.ts). Reading
 * it needs no network: `status` and `doctor` use this module alone. Beside
 * it, repins.json: the audit of each change of pins by `enroll` (from which
 * to which, who vouched, when), for `status` to show.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { readIfExists, writeFileAtomic } from '../lib/fs.js';
import { PATHS } from '../store/layout.js';

const TRUST_FILE = PATHS.trust.name;
import { certFingerprint, issuedBy, mayIssueProblem, subjectText } from '../pki/x509.js';
import { crossLimitsProblem } from './cross-limits.js';

export interface TrustedRoot {
  fingerprint: string;
  pem: string;
  /** For a root that matches no pin: the certificate by which an already trusted root vouches for it. */
  crossPem?: string;
}

/** A certificate the CA offered as a root that is not trusted, kept for `status` to report. */
export interface RefusedRoot {
  fingerprint: string;
  subject: string;
  /** True when it is a self-signed CA, which the operator could pin; false for a leaf or intermediate. */
  root: boolean;
  reason: string;
}

export interface TrustBundle {
  /** The pins this bundle was bootstrapped from; a change of pins means bootstrap again. */
  pins: string[];
  roots: TrustedRoot[];
  bootstrappedAt: string;
  refreshedAt?: string;
  /** What the CA's /roots served at the last refresh that is not trusted. */
  refused?: RefusedRoot[];
}

/** What loadTrust dropped from each bundle, so a writer knows to save the cleaned file. */
const cleaned = new WeakMap<TrustBundle, RefusedRoot[]>();

export function rootsPem(bundle: TrustBundle): string[] {
  return bundle.roots.map((r) => r.pem);
}

/** The roots loadTrust dropped from this bundle (also listed in its `refused`). */
export function droppedOnLoad(bundle: TrustBundle): RefusedRoot[] {
  return cleaned.get(bundle) ?? [];
}

const spki = (cert: X509Certificate) => cert.publicKey.export({ type: 'spki', format: 'der' });

/** A self-signed certificate of a CA that may sign certificates. */
export function isSelfSignedCa(cert: X509Certificate): boolean {
  return issuedBy(cert, cert) && mayIssueProblem(cert) === undefined;
}

/**
 * Whether `cross` is a certificate by which one of `trusted` vouches for
 * `root`: same subject and same key as `root`, itself a CA certificate, and
 * signed by a trusted root.
 */
export function vouchesFor(cross: X509Certificate, root: X509Certificate, trusted: X509Certificate[]): boolean {
  if (cross.subject !== root.subject || !spki(cross).equals(spki(root))) return false;
  if (mayIssueProblem(cross) !== undefined) return false;
  return trusted.some((t) => !spki(t).equals(spki(root)) && issuedBy(cross, t));
}

/** Why a root is refused although a trusted root cross-signed it: `problem` from crossLimitsProblem. */
export function limitedReason(problem: string): string {
  return `cross-signed by a trusted root, but only within limits the root does not carry itself (${problem}); trusting it as a root would lift them`;
}

export function describeRefused(cert: X509Certificate, reason: string): RefusedRoot {
  const subject = subjectText(cert);
  return { fingerprint: certFingerprint(cert), subject, root: isSelfSignedCa(cert), reason };
}

export function loadTrust(stateDir: string): TrustBundle | undefined {
  const text = readIfExists(join(stateDir, TRUST_FILE));
  if (text === undefined) return undefined;
  try {
    const bundle = JSON.parse(text) as TrustBundle;
    if (!Array.isArray(bundle.pins) || !Array.isArray(bundle.roots) || bundle.roots.length === 0) return undefined;
    // Never trust what the file claims: recompute each fingerprint from the PEM.
    bundle.roots = bundle.roots.filter((r) => {
      try {
        return certFingerprint(new X509Certificate(r.pem)) === r.fingerprint;
      } catch {
        return false;
      }
    });
    if (!Array.isArray(bundle.refused)) delete bundle.refused;
    if (bundle.pins.length) keepOnlyVouched(bundle);
    return bundle.roots.length ? bundle : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Drops the roots that match no pin and carry no cross-signature by a root
 * kept before them (pinned roots first, then in rounds, so a chain of
 * rotations stays), or one that limits what the root does not (adopted by
 * an older version). Dropped roots are listed as refused for `status`.
 * Without pins (ca.rootFile and no fingerprint) the operator's file is the
 * trust, and everything in it stays.
 */
function keepOnlyVouched(bundle: TrustBundle): void {
  const kept = bundle.roots.filter((r) => bundle.pins.includes(r.fingerprint));
  let pending = bundle.roots.filter((r) => !bundle.pins.includes(r.fingerprint));
  const limited = new Map<TrustedRoot, string>();
  for (let progress = true; progress && pending.length;) {
    progress = false;
    const trusted = kept.map((r) => new X509Certificate(r.pem));
    for (const r of pending) {
      const cert = new X509Certificate(r.pem);
      let cross: X509Certificate | undefined;
      try {
        cross = r.crossPem ? new X509Certificate(r.crossPem) : undefined;
      } catch {
        cross = undefined;
      }
      if (isSelfSignedCa(cert) && cross && vouchesFor(cross, cert, trusted)) {
        const problem = crossLimitsProblem(cross, cert, trusted);
        if (problem === undefined) {
          kept.push(r);
          progress = true;
        } else limited.set(r, limitedReason(problem));
      }
    }
    pending = pending.filter((r) => !kept.includes(r));
  }
  if (!pending.length) return;
  bundle.roots = kept;
  const reason = 'matches no pin and is not cross-signed by a trusted root';
  const refused = pending.map((r) =>
    describeRefused(new X509Certificate(r.pem), `was in trust.json, but ${limited.get(r) ?? reason}: dropped`),
  );
  cleaned.set(bundle, refused);
  const listed = new Set(refused.map((r) => r.fingerprint));
  bundle.refused = [...refused, ...(bundle.refused ?? []).filter((r) => !listed.has(r.fingerprint))];
}

/** A change of pins by `cert-agent enroll --fingerprint`: who vouched for the new root, and when. */
export interface RepinRecord {
  at: string;
  from: string[];
  to: string[];
  vouchedBy: string;
}

const REPIN_FILE = 'repins.json';
/** Who vouched, as a host script says it ("host pve1 ca-hook 103"): printable, short, no quoting needed. */
export const VOUCHED_BY = /^[A-Za-z0-9 ._:@/-]{1,100}$/;

function isRepin(r: unknown): r is RepinRecord {
  const x = r as RepinRecord;
  const fps = (v: unknown) => Array.isArray(v) && v.every((f) => typeof f === 'string' && /^[0-9a-f]{64}$/.test(f));
  return (
    Boolean(x) &&
    typeof x.at === 'string' &&
    !Number.isNaN(Date.parse(x.at)) &&
    fps(x.from) &&
    fps(x.to) &&
    typeof x.vouchedBy === 'string' &&
    VOUCHED_BY.test(x.vouchedBy)
  );
}

/** The recorded re-pins, oldest first; what does not look like one is left out. */
export function loadRepins(stateDir: string): RepinRecord[] {
  try {
    const list: unknown = JSON.parse(readIfExists(join(stateDir, REPIN_FILE)) ?? '[]');
    return Array.isArray(list) ? list.filter(isRepin) : [];
  } catch {
    return [];
  }
}

/** Appends a re-pin to the audit (the last 20 are kept). */
export function recordRepin(stateDir: string, record: RepinRecord): void {
  const list = [...loadRepins(stateDir), record].slice(-20);
  writeFileAtomic(join(stateDir, REPIN_FILE), `${JSON.stringify(list, null, 2)}\n`, 0o644);
}

export function saveTrust(stateDir: string, bundle: TrustBundle): void {
  writeFileAtomic(join(stateDir, TRUST_FILE), `${JSON.stringify(bundle, null, 2)}\n`, PATHS.trust.mode({}));
}

/** The saved bundle if it was made from exactly these pins (order aside). */
export function trustForPins(stateDir: string, pins: string[]): TrustBundle | undefined {
  const bundle = loadTrust(stateDir);
  if (!bundle) return undefined;
  const same = bundle.pins.length === pins.length && pins.every((p) => bundle.pins.includes(p));
  return same ? bundle : undefined;
}
