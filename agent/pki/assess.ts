/**
 * One assessment of a certificate set: does the key match, does it carry the
 * configured names, is it valid now, does it chain to the pinned roots, is
 * it the placeholder. The renewal decision, the store's check before a set
 * goes live, `status` and `doctor` all ask this one function, so they agree
 * and say it in the same words.
 */
import type { X509Certificate } from 'node:crypto';
import { keyMatchesCert, missingNames, verifyChain } from './x509.js';

export type FindingCode = 'placeholder' | 'key-mismatch' | 'names-missing' | 'not-yet-valid' | 'expired' | 'chain';

export interface Finding {
  code: FindingCode;
  /** critical: the set must not be served (or be replaced now); warning: usable, but not what was asked for. */
  severity: 'critical' | 'warning';
  /** One line for the operator, naming the certificate by serial. */
  message: string;
  /** names-missing: the configured names the certificate lacks. */
  missing?: string[];
  /** chain, expired, not-yet-valid: what the path check found, without the serial. */
  problem?: string;
}

export interface Assessment {
  /** Every finding, most urgent first; empty when the set is good. */
  findings: Finding[];
  /** The pinned root the chain ends at, when it verifies. */
  root?: X509Certificate;
}

export interface SetUnderReview {
  keyPem: string;
  cert: X509Certificate;
  intermediates: X509Certificate[];
  placeholder: boolean;
}

export interface Expectations {
  domains: string[];
  /** The pinned roots; a placeholder is not checked against them. */
  roots: X509Certificate[];
  now: Date;
}

export function assessSet(set: SetUnderReview, expect: Expectations): Assessment {
  const findings: Finding[] = [];
  let root: X509Certificate | undefined;
  const serial = set.cert.serialNumber.toLowerCase();
  if (!keyMatchesCert(set.keyPem, set.cert))
    findings.push({
      code: 'key-mismatch',
      severity: 'critical',
      message: `certificate ${serial} does not match the private key`,
    });
  const missing = missingNames(set.cert, expect.domains);
  if (missing.length)
    findings.push({
      code: 'names-missing',
      severity: 'critical',
      message: `certificate ${serial} lacks the configured names ${missing.join(', ')}`,
      missing,
    });
  const window = validityFinding(set.cert, expect.now);
  if (window) findings.push(window);
  if (set.placeholder) {
    findings.push({
      code: 'placeholder',
      severity: 'warning',
      message: 'the self-signed placeholder is in use: the CA has not issued a certificate yet',
    });
  } else if (!window) {
    const chain = verifyChain(set.cert, set.intermediates, expect.roots, expect.now);
    if ('problem' in chain)
      findings.push({
        code: 'chain',
        severity: 'critical',
        message: `certificate ${serial} does not verify to the pinned root: ${chain.problem}`,
        problem: chain.problem,
      });
    else root = chain.root;
  }
  return root ? { findings, root } : { findings };
}

/** The first critical finding, if any: what makes a set unfit to go live or to stay. */
export function firstCritical(findings: Finding[]): Finding | undefined {
  return findings.find((f) => f.severity === 'critical');
}

function validityFinding(cert: X509Certificate, now: Date): Finding | undefined {
  const serial = cert.serialNumber.toLowerCase();
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  // A fresh certificate that is "not yet valid" or "expired" usually means this
  // machine's clock is off, not the CA: say which clock the verdict used.
  if (now < from) {
    const problem = `not valid before ${from.toISOString()} (this machine's clock says ${now.toISOString()}; check it)`;
    return { code: 'not-yet-valid', severity: 'critical', message: `certificate ${serial} is ${problem}`, problem };
  }
  if (now >= to) {
    const problem = `expired at ${to.toISOString()} (this machine's clock says ${now.toISOString()})`;
    return { code: 'expired', severity: 'critical', message: `certificate ${serial} ${problem}`, problem };
  }
  return undefined;
}
