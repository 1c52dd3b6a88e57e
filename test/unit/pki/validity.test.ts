/**
 * validity.ts reads a certificate's window from the DER, so a date OpenSSL
 * cannot print (Node's validTo is then "Bad time value" and new Date() of it
 * an Invalid Date, false in every comparison) never counts as valid forever:
 * the chain check and the assessment refuse it, the schedule finds it due
 * now, and status reports it instead of failing on it.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assessSet, firstCritical } from '../../../agent/pki/assess.js';
import { summarize, verifyChain } from '../../../agent/pki/x509.js';
import { validityOf, windowAt } from '../../../agent/pki/validity.js';
import { nextRenewal } from '../../../agent/renewal/schedule.js';
import { loadConfig } from '../../../agent/config/config.js';
import { collectStatus } from '../../../agent/report/status.js';
import { makeCa, writeSetByHand, type Leaf, type TestCa } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/agent.js';

const DOMAINS = ['a.example'];
const policy = { at: 0.66, jitter: 0.05 };
let ca: TestCa;
let year49: Leaf;
let scratch: string;

/**
 * notAfter in year 0049: @peculiar/x509 writes it as the UTCTime "0601000000Z"
 * (no year, no seconds), which neither OpenSSL nor this reader can take as a date.
 */
function in49(): Date {
  const d = new Date(0);
  d.setUTCFullYear(49, 5, 1);
  return d;
}

beforeAll(async () => {
  ca = await makeCa('Validity');
  year49 = await ca.leaf({ domains: DOMAINS, notBefore: new Date(Date.now() - 3_600_000), notAfter: in49() });
  scratch = mkdtempSync(join(tmpdir(), 'cert-agent-validity-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const x = (pem: string) => new X509Certificate(pem);
const set = (leaf: Leaf, cert = x(leaf.pem)) => ({
  keyPem: leaf.keyPem,
  cert,
  intermediates: [x(ca.intermediate.pem)],
  placeholder: false,
});

/** An ordinary leaf with its notAfter's month written as 13: still a certificate Node parses, but no date. */
function monthThirteen(leaf: Leaf): X509Certificate {
  const der = Buffer.from(x(leaf.pem).raw);
  const notBefore = der.indexOf(Buffer.from([0x17, 0x0d]));
  const notAfter = der.indexOf(Buffer.from([0x17, 0x0d]), notBefore + 15);
  expect(notBefore).toBeGreaterThan(0);
  expect(notAfter).toBe(notBefore + 15);
  der.write('13', notAfter + 4, 'latin1');
  return new X509Certificate(der);
}

function openSslVerifies(leaf: Leaf): boolean {
  writeFileSync(join(scratch, 'ca.pem'), ca.root.pem);
  writeFileSync(join(scratch, 'int.pem'), ca.intermediate.pem);
  writeFileSync(join(scratch, 'leaf.pem'), leaf.pem);
  // Not -x509_strict: these test certificates carry no authority key identifier.
  const args = ['verify', '-purpose', 'sslserver', '-CAfile', 'ca.pem', '-untrusted', 'int.pem'];
  try {
    execFileSync('openssl', [...args, 'leaf.pem'], { cwd: scratch, stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Every consumer of the window, on a certificate whose window cannot be read. */
function expectUnreadable(cert: X509Certificate, leaf: Leaf): void {
  const now = new Date();
  const v = validityOf(cert);
  expect(v.unreadable).toMatch(/^notAfter is /);
  expect(Number.isNaN(v.notBefore.getTime()) || Number.isNaN(v.notAfter.getTime())).toBe(false);
  expect(windowAt(cert, now)).toBe('unreadable');
  const chain = verifyChain(cert, [x(ca.intermediate.pem)], [x(ca.root.pem)], now);
  expect(chain).toEqual({ problem: expect.stringMatching(/is unusable: its validity cannot be read \(notAfter/) });
  const { findings } = assessSet(set(leaf, cert), { domains: DOMAINS, roots: [x(ca.root.pem)], now });
  const critical = firstCritical(findings);
  expect(critical?.code).toBe('chain');
  expect(critical?.message).toMatch(/^certificate [0-9a-f]+ is unusable: its validity cannot be read \(notAfter/);
  expect(nextRenewal(v, policy, () => 0.5).getTime()).toBeLessThanOrEqual(now.getTime());
  expect(() => summarize(cert).notAfter.toISOString()).not.toThrow();
}

describe('a notAfter that cannot be read', () => {
  it('year 49 as a generator writes it: openssl refuses it, Node cannot print it, the agent refuses it', () => {
    expect(openSslVerifies(year49)).toBe(false);
    expect(Number.isNaN(new Date(x(year49.pem).validTo).getTime())).toBe(true);
    expectUnreadable(x(year49.pem), year49);
  });

  it('month 13 in an otherwise ordinary certificate', async () => {
    const leaf = await ca.leaf({ domains: DOMAINS });
    const cert = monthThirteen(leaf);
    expect(validityOf(cert).unreadable).toMatch(/notAfter is not a calendar date/);
    expectUnreadable(cert, leaf);
  });

  it('status reports it as CRITICAL, due now, instead of failing on it', () => {
    const dir = tempDir('cert-agent-validity-status-');
    try {
      const stateDir = join(dir, 'state');
      mkdirSync(stateDir, { mode: 0o700 });
      writeFileSync(
        join(stateDir, 'trust.json'),
        JSON.stringify({
          pins: [ca.fingerprint],
          roots: [{ fingerprint: ca.fingerprint, pem: ca.root.pem }],
          bootstrappedAt: new Date().toISOString(),
        }),
      );
      writeFileSync(join(stateDir, 'state.json'), JSON.stringify({ consecutiveFailures: 0, backoffStep: 0 }));
      writeSetByHand(join(dir, 'tls'), 's1', { ...year49, rootPem: ca.root.pem });
      const config = join(dir, 'config.yaml');
      writeFileSync(
        config,
        [
          `ca: { url: "https://127.0.0.1:9", fingerprint: "${ca.fingerprint}" }`,
          `certificate: { domains: [a.example], dir: "${join(dir, 'tls')}" }`,
          `stateDir: "${stateDir}"`,
        ].join('\n'),
      );
      const report = collectStatus(loadConfig(config), new Date());
      expect(report.status).toBe('CRITICAL');
      expect(report.problems.join('\n')).toMatch(/validity cannot be read/);
      expect(report.certificate?.expired).toBe(true);
      expect(report.certificate?.chainVerifies).toBe(false);
      expect(report.renewal.due).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ordinary certificates', () => {
  it('read the same dates as Node prints, UTCTime and GeneralizedTime (2050 on)', async () => {
    const utc = await ca.leaf({ domains: DOMAINS });
    const general = await ca.leaf({ domains: DOMAINS, notAfter: new Date('2051-02-03T04:05:06Z') });
    for (const leaf of [utc, general]) {
      const cert = x(leaf.pem);
      const v = validityOf(cert);
      expect(v.unreadable).toBeUndefined();
      expect(v.notBefore.getTime()).toBe(new Date(cert.validFrom).getTime());
      expect(v.notAfter.getTime()).toBe(new Date(cert.validTo).getTime());
      expect(openSslVerifies(leaf)).toBe(true);
    }
    expect(validityOf(x(general.pem)).notAfter.toISOString()).toBe('2051-02-03T04:05:06.000Z');
  });
});
