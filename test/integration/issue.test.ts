/**
 * The foundation end to end, through the bundle as a separate process and a
 * real step-ca: enroll (pin + config), renew (ACME http-01, standalone),
 * the files and their modes, openssl's verdict, renew again (not due),
 * renew --force (previous set kept), status.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StepCa } from '../harness/stepca.js';
import { useStepCaSuite } from '../helpers/suite.js';
import { modeOf, runAgent, tempDir } from '../helpers/agent.js';
import { enrollArgs as enrolled } from '../helpers/enrolled.js';

let ca: StepCa;
let dir: string;
const cfg = () => join(dir, 'config.yaml');
const certDir = () => join(dir, 'tls');
const stateDir = () => join(dir, 'state');

useStepCaSuite((c, d) => {
  ca = c;
  dir = d;
});

const enrollArgs = (extra: string[] = []) => enrolled(ca, dir, { domains: ['localhost', '127.0.0.1'], extra });

describe('enroll and issue through the bundle against a real step-ca', () => {
  it('enrolls: pins the root, writes the config 0600', async () => {
    const r = await runAgent(enrollArgs());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`pinned CA root ${ca.rootFingerprint}`);
    expect(modeOf(cfg())).toBe(0o600);
    expect(modeOf(stateDir())).toBe(0o700);
    const trust = JSON.parse(readFileSync(join(stateDir(), 'trust.json'), 'utf8'));
    expect(trust.roots.map((r: { fingerprint: string }) => r.fingerprint)).toEqual([ca.rootFingerprint]);
  });

  it('enroll again with the same arguments changes nothing', async () => {
    const before = readFileSync(cfg(), 'utf8');
    const trustBefore = readFileSync(join(stateDir(), 'trust.json'), 'utf8');
    const r = await runAgent(enrollArgs());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('unchanged:');
    expect(readFileSync(cfg(), 'utf8')).toBe(before);
    expect(readFileSync(join(stateDir(), 'trust.json'), 'utf8')).toBe(trustBefore);
  });

  it('renew issues a certificate openssl verifies against the pinned root, with private modes', async () => {
    const r = await runAgent(['renew', '--config', cfg()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^renewed \(no certificate installed\)/);
    const rootFile = join(dir, 'root.pem');
    writeFileSync(rootFile, ca.rootPem);
    const verdict = execFileSync(
      'openssl',
      ['verify', '-CAfile', rootFile, '-untrusted', join(certDir(), 'chain.pem'), join(certDir(), 'cert.pem')],
      { encoding: 'utf8' },
    );
    expect(verdict.trim()).toBe(`${join(certDir(), 'cert.pem')}: OK`);
    const cert = new X509Certificate(readFileSync(join(certDir(), 'cert.pem')));
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(modeOf(certDir())).toBe(0o700);
    // key.pem is a link into the live set; the file it resolves to is what must be 0600.
    expect(modeOf(join(certDir(), 'key.pem'))).toBe(0o600);
    expect(modeOf(join(stateDir(), 'account.key'))).toBe(0o600);
    const fullchain = readFileSync(join(certDir(), 'fullchain.pem'), 'utf8');
    expect(fullchain).toBe(
      readFileSync(join(certDir(), 'cert.pem'), 'utf8') + readFileSync(join(certDir(), 'chain.pem'), 'utf8'),
    );
    expect(readFileSync(join(certDir(), 'ca.pem'), 'utf8').trim()).toBe(ca.rootPem.trim());
    const key = readFileSync(join(certDir(), 'key.pem'), 'utf8');
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(key))).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // combined.pem: the same key and chain in one file, as private as the key.
    expect(modeOf(join(certDir(), 'combined.pem'))).toBe(0o600);
    expect(readFileSync(join(certDir(), 'combined.pem'), 'utf8')).toBe(key.trimEnd() + '\n' + fullchain);
  });

  it('renew again is not due and changes nothing', async () => {
    const before = readlinkSync(join(certDir(), 'current'));
    const r = await runAgent(['renew', '--config', cfg()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^not due/);
    expect(readlinkSync(join(certDir(), 'current'))).toBe(before);
  });

  it('renew --force installs a new set and keeps the previous one', async () => {
    const oldSerial = new X509Certificate(readFileSync(join(certDir(), 'cert.pem'))).serialNumber;
    const oldSet = readlinkSync(join(certDir(), 'current'));
    const r = await runAgent(['renew', '--force', '--config', cfg()]);
    expect(r.code).toBe(0);
    const newSerial = new X509Certificate(readFileSync(join(certDir(), 'cert.pem'))).serialNumber;
    expect(newSerial).not.toBe(oldSerial);
    expect(readlinkSync(join(certDir(), 'previous'))).toBe(oldSet);
    expect(lstatSync(join(certDir(), oldSet)).isDirectory()).toBe(true);
  });

  it('status shows names, serial and expiry and exits 0', async () => {
    const serial = new X509Certificate(readFileSync(join(certDir(), 'cert.pem'))).serialNumber.toLowerCase();
    const r = await runAgent(['status', '--config', cfg()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('cert-agent OK');
    expect(r.stdout).toContain(serial);
    expect(r.stdout).toContain('localhost, 127.0.0.1');
    const json = JSON.parse((await runAgent(['status', '--json', '--config', cfg()])).stdout);
    expect(json.status).toBe('OK');
    expect(json.certificate.serial).toBe(serial);
  });

  it('status is CRITICAL (2) when the certificate is missing', async () => {
    const other = tempDir();
    try {
      writeFileSync(
        join(other, 'c.yaml'),
        `ca: {url: "${ca.url}", fingerprint: "${ca.rootFingerprint}"}\ncertificate: {domains: [localhost], dir: ${other}/tls}\nstateDir: ${other}/state\n`,
      );
      const r = await runAgent(['status', '--config', join(other, 'c.yaml')]);
      expect(r.code).toBe(2);
      expect(r.stdout).toContain('CRITICAL');
      expect(existsSync(join(other, 'tls'))).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
