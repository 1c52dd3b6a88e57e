/**
 * Challenge modes and key types against a real step-ca, through the renew
 * pass in-process: webroot served by a real nginx, and every key type the
 * configuration allows. Then the bundled daemon under the umask the shipped
 * unit sets (0077), with nginx's workers as www-data: what is meant for other
 * readers must still be readable by them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig, type Config } from '../../agent/config/config.js';
import { silentLogger } from '../../agent/lib/log.js';
import { renewPass } from '../../agent/renewal/pass.js';
import type { StepCa } from '../harness/stepca.js';
import { useStepCaSuite } from '../helpers/suite.js';
import { modeOf } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';

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

/**
 * A real nginx serving only the challenge path from the document root
 * `webroot`, on the CA's validation port. Workers run as `user`: root where
 * the test directories are 0700 root, www-data (as in a Debian container)
 * where they are not.
 */
async function startNginx(
  webroot: string,
  port: number,
  user = 'root',
  name = 'nginx',
): Promise<{ stop(): Promise<void> }> {
  const ndir = join(dir, name);
  const tmp = join(ndir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const conf = join(ndir, 'nginx.conf');
  writeFileSync(
    conf,
    `user ${user}; worker_processes 1; pid ${ndir}/nginx.pid; error_log ${ndir}/error.log;
events { worker_connections 64; }
http {
  access_log off; client_body_temp_path ${tmp}; proxy_temp_path ${tmp};
  fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  server {
    listen 127.0.0.1:${port};
    location /.well-known/acme-challenge/ { root ${webroot}; default_type application/octet-stream; }
    location / { return 404; }
  }
}
`,
  );
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

/** Runs argv as www-data (no supplementary groups), as nginx's workers, Traefik or node_exporter would read. */
function asWwwData(argv: string[]): { code: number | null; stderr: string } {
  const ids = ['--reuid=www-data', '--regid=www-data', '--clear-groups'];
  const r = spawnSync('setpriv', [...ids, '--', ...argv], { encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

/** Mode of every file and directory under base (links not followed), set ids normalised to `*`. */
function modesUnder(base: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(base, { recursive: true }) as string[]) {
    const st = lstatSync(join(base, rel));
    if (st.isSymbolicLink()) continue;
    out[rel.replace(/^(tls\/\.sets\/)[^/]+/, '$1*')] = (st.mode & 0o7777).toString(8).padStart(4, '0');
  }
  return out;
}

describe('the daemon under umask 077 (the unit sets UMask=0077), nginx workers as www-data', () => {
  /**
   * One `cert-agent run` issuing over webroot through nginx, rewriting a
   * Traefik dynamic file and the metrics textfile, under `umask`. The webroot
   * and Traefik's directories do not exist yet: the agent creates them.
   */
  async function runUnder(umask: number, name: string) {
    // www-data traverses the suite directory to reach the webroot and the files meant for it.
    chmodSync(dir, 0o711);
    const base = join(dir, name);
    mkdirSync(join(base, 'metrics'), { recursive: true });
    chmodSync(base, 0o755);
    chmodSync(join(base, 'metrics'), 0o755);
    const webroot = join(base, 'www/acme-challenge');
    const textfile = join(base, 'metrics/cert-agent.prom');
    const config = join(base, 'config.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        ca: { url: ca.url, fingerprint: ca.rootFingerprint },
        certificate: { domains: ['localhost', '127.0.0.1'], dir: join(base, 'tls') },
        challenge: { mode: 'webroot', webroot },
        reload: { target: 'traefik', traefik: { dynamicFile: join(base, 'traefik/dynamic/cert-agent.yml') } },
        metrics: { textfile },
        stateDir: join(base, 'state'),
      }),
      { mode: 0o600 },
    );
    const nginx = await startNginx(webroot, ca.acmeHttpPort, 'www-data', `nginx-${name}`);
    const daemon = new DaemonProcess(config, {}, { umask });
    try {
      const deadline = Date.now() + 60_000;
      const done = () => daemon.events('certificate_installed').length + daemon.events('renewal_failed').length > 0;
      while (!(done() && existsSync(textfile))) {
        if (Date.now() > deadline) {
          throw new Error(`no pass finished; log:\n${daemon.lines.map((l) => JSON.stringify(l)).join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(daemon.events('renewal_failed').map((e) => e.error)).toEqual([]);
      expect(readdirSync(webroot)).toEqual([]);
      return { base, webroot, textfile, modes: modesUnder(base) };
    } finally {
      await daemon.stop();
      await nginx.stop();
    }
  }

  it('issues over webroot (www-data reads the tokens) and gives readers exactly the modes asked for', async () => {
    const reference = await runUnder(0o022, 'umask-022');
    const run = await runUnder(0o077, 'umask-077');
    // Every file and directory the agent wrote has the mode it asked for, as under a shell's umask.
    expect(run.modes).toEqual(reference.modes);
    // What is meant for other readers, whatever the umask:
    expect(run.modes).toMatchObject({
      www: '0755',
      'www/acme-challenge': '0755',
      traefik: '0755',
      'traefik/dynamic': '0755',
      'traefik/dynamic/cert-agent.yml': '0644',
      'metrics/cert-agent.prom': '0644',
    });
    for (const f of ['cert.pem', 'chain.pem', 'fullchain.pem', 'ca.pem']) {
      expect(run.modes[`tls/.sets/*/${f}`]).toMatch(/^0644$|^0640$/);
    }
    expect(asWwwData(['cat', join(run.base, 'traefik/dynamic/cert-agent.yml')])).toMatchObject({ code: 0 });
    expect(asWwwData(['cat', run.textfile])).toMatchObject({ code: 0 });
    expect(asWwwData(['ls', run.webroot])).toMatchObject({ code: 0 });
    // and what is secret stays so.
    for (const f of ['key.pem', 'combined.pem']) {
      expect(Number.parseInt(run.modes[`tls/.sets/*/${f}`] ?? '7777', 8) & 0o007).toBe(0);
    }
    expect(asWwwData(['cat', join(run.base, 'tls/key.pem')]).code).not.toBe(0);
    expect(run.modes['state/account.key']).toBe('0600');
  }, 150_000);
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
    await expect(renewPass({ config, log: silentLogger() })).rejects.toThrow(
      /http-01 validation of (localhost|127\.0\.0\.1) failed: .*(connection refused|connect)/i,
    );
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
    const config = {
      ...configFor('reload-retry'),
      reload: { ...configFor('reload-retry').reload, target: 'command' as const, command: ['sh', '-c', script] },
    };
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
