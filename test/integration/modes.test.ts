/**
 * Challenge modes and key types against a real step-ca, through the renew
 * pass in-process: webroot served by a real nginx, and every key type the
 * configuration allows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig, type Config } from '../../agent/config/config.js';
import { silentLogger } from '../../agent/lib/log.js';
import { renewPass } from '../../agent/renewal/pass.js';
import type { StepCa } from '../harness/stepca.js';
import { useStepCaSuite } from '../helpers/suite.js';
import { modeOf } from '../helpers/agent.js';

let ca: StepCa;
let dir: string;

useStepCaSuite((c, d) => {
  ca = c;
  dir = d;
});

function configFor(name: string, extra: Record<string, unknown> = {}): Config {
  const base = join(dir, name);
  return validateConfig({
    ca: { url: ca.url, fingerprint: ca.rootFingerprint },
    certificate: { domains: ['localhost', '127.0.0.1'], dir: join(base, 'tls'), ...(extra.certificate as object) },
    challenge: { mode: 'standalone', listen: `127.0.0.1:${ca.acmeHttpPort}`, ...(extra.challenge as object) },
    stateDir: join(base, 'state'),
  });
}

/** A real nginx serving only the challenge path from the document root `webroot`, on the CA's validation port. */
async function startNginx(webroot: string, port: number): Promise<{ stop(): Promise<void> }> {
  const ndir = join(dir, 'nginx');
  mkdirSync(ndir, { recursive: true });
  const conf = join(ndir, 'nginx.conf');
  // The test directories are 0700 root: workers must run as root to read tokens there.
  writeFileSync(conf, `user root; worker_processes 1; pid ${ndir}/nginx.pid; error_log ${ndir}/error.log;
events { worker_connections 64; }
http {
  access_log off; client_body_temp_path ${ndir}; proxy_temp_path ${ndir}; fastcgi_temp_path ${ndir}; uwsgi_temp_path ${ndir}; scgi_temp_path ${ndir};
  server {
    listen 127.0.0.1:${port};
    location /.well-known/acme-challenge/ { root ${webroot}; default_type application/octet-stream; }
    location / { return 404; }
  }
}
`);
  const proc: ChildProcess = spawn('nginx', ['-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  while (!existsSync(join(ndir, 'nginx.pid'))) {
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${readFileSync(join(ndir, 'error.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

describe('webroot mode through a real nginx', () => {
  it('issues, and leaves no token files behind', async () => {
    const webroot = join(dir, 'webroot');
    const nginx = await startNginx(webroot, ca.acmeHttpPort);
    try {
      const config = configFor('webroot-mode', { challenge: { mode: 'webroot', webroot } });
      const result = await renewPass({ config, log: silentLogger() });
      expect(result.action).toBe('renewed');
      expect(result.live.cert.subjectAltName).toContain('DNS:localhost');
      expect(readdirSync(webroot)).toEqual([]);
    } finally {
      await nginx.stop();
    }
  });
});

describe('key types', () => {
  const expected: Record<string, (c: X509Certificate) => void> = {
    'ec-p256': (c) => expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1'),
    'ec-p384': (c) => expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1'),
    'rsa-2048': (c) => expect(c.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048),
    'rsa-3072': (c) => expect(c.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072),
    'rsa-4096': (c) => expect(c.publicKey.asymmetricKeyDetails?.modulusLength).toBe(4096),
  };
  for (const [keyType, check] of Object.entries(expected)) {
    it(`issues with ${keyType}`, async () => {
      const config = configFor(keyType, { certificate: { keyType } });
      const result = await renewPass({ config, log: silentLogger() });
      const cert = new X509Certificate(readFileSync(join(config.certificate.dir, 'cert.pem')));
      check(cert);
      expect(cert.serialNumber).toBe(result.live.cert.serialNumber);
      expect(cert.checkPrivateKey(createPrivateKey(readFileSync(join(config.certificate.dir, 'key.pem'))))).toBe(true);
      expect(modeOf(join(config.certificate.dir, 'key.pem'))).toBe(0o600);
    }, 120_000);
  }
});

describe('a challenge the CA cannot reach', () => {
  it('fails within seconds with the CA own reason, and installs nothing', async () => {
    // The responder listens on another port than the one the CA validates on.
    const config = configFor('unreachable', { challenge: { listen: '127.0.0.1:1' } });
    const started = Date.now();
    await expect(renewPass({ config, log: silentLogger() })).rejects.toThrow(/http-01 validation of (localhost|127\.0\.0\.1) failed: .*(connection refused|connect)/i);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(existsSync(join(config.certificate.dir, 'cert.pem'))).toBe(false);
    const state = JSON.parse(readFileSync(join(config.stateDir, 'state.json'), 'utf8'));
    expect(state.lastAttempt.result).toBe('failed');
    expect(state.lastAttempt.errorKind).toBe('ca-protocol');
  });
});

describe('a reload that failed after the install', () => {
  it('is retried by the next pass although the certificate is not due, until the consumer takes it', async () => {
    const flag = join(dir, 'consumer-ready');
    const marker = join(dir, 'reloaded-serial');
    // A consumer that refuses until `flag` exists, then records the serial it was given.
    const script = `[ -e ${flag} ] || { echo 'consumer not ready' >&2; exit 3; }; echo "$CERT_AGENT_SERIAL" > ${marker}`;
    const config = { ...configFor('reload-retry'), reload: { ...configFor('reload-retry').reload, target: 'command' as const, command: ['sh', '-c', script] } };
    await expect(renewPass({ config, log: silentLogger() })).rejects.toThrow(/exited 3; output: consumer not ready/);
    const installed = new X509Certificate(readFileSync(join(config.certificate.dir, 'cert.pem')));
    writeFileSync(flag, '');
    const second = await renewPass({ config, log: silentLogger() });
    expect(second.action).toBe('not-due');
    expect(second.reload?.detail).toMatch(/exited 0/);
    expect(readFileSync(marker, 'utf8').trim()).toBe(installed.serialNumber.toLowerCase());
    const state = JSON.parse(readFileSync(join(config.stateDir, 'state.json'), 'utf8'));
    expect(state.reload.ok).toBe(true);
    // Once the consumer has it, a further pass does not reload again.
    rmSync(marker);
    const third = await renewPass({ config, log: silentLogger() });
    expect(third.reload).toBeUndefined();
    expect(existsSync(marker)).toBe(false);
  });
});
