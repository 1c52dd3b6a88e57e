/**
 * One assessment of a certificate set: does the key match, does it carry the
 * configured names, is it valid now, does it chain to the pinned roots, is
 * it the placeholder. The renewal decision, the store's check before a set
 * goes live, `status` and `doctor` all ask this one function, so they agree
 * and say it in the same words. It never throws: whatever a certificate
 * carries, the answer is a finding.
 */
import type { X509Certificate } from 'node:crypto';
import { windowAt, windowProblem } from './validity.js';
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
  try {
    return assess(set, expect);
  } catch (err) {
    // Every check below is meant to be total; this is the net under them.
    const problem = `it could not be checked (${err instanceof Error ? err.message : String(err)})`;
    const message = `certificate ${serialOf(set.cert)} ${problem}`;
    return { findings: [{ code: 'chain', severity: 'critical', message, problem }] };
  }
}

function serialOf(cert: X509Certificate): string {
  try {
    return cert.serialNumber.toLowerCase();
  } catch {
    return '(unreadable serial)';
  }
}

function assess(set: SetUnderReview, expect: Expectations): Assessment {
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

/** The window rule shared with verifyChain (validity.ts: RFC 5280, valid through notAfter). */
function validityFinding(cert: X509Certificate, now: Date): Finding | undefined {
  const serial = cert.serialNumber.toLowerCase();
  const code = windowAt(cert, now);
  const problem = windowProblem(cert, now);
  if (!code || !problem) return undefined;
  if (code === 'unreadable')
    return { code: 'chain', severity: 'critical', message: `certificate ${serial} is ${problem}`, problem };
  const message = `certificate ${serial} ${code === 'expired' ? '' : 'is '}${problem}`;
  return { code, severity: 'critical', message, problem };
}
