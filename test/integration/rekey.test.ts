/**
 * Renewal over step-ca's own API (`POST /1.0/rekey`, mutual TLS) against the
 * real step-ca 0.30.2. An nginx "container" (Debian's nginx, workers
 * www-data, the shipped webroot snippet) in its own network namespace, the CA
 * in another validating http-01 on port 80 through nginx, a client in a
 * third trusting only the pinned root: after the first certificate (ACME),
 * nginx's challenge snippet is taken away so that no http-01 can succeed, and
 * renewals go on by rekey, each with a new key, nginx serving each new
 * serial. Then the ACME provisioner's `disableRenewal` (auto falls back to
 * ACME, step fails and keeps the certificate), and the CA recreated with a
 * new root (the same CRITICAL and re-pin as without this feature; after the
 * re-pin the first renewal is ACME, the next rekey). Last, on a CA of its
 * own issuing 20 s certificates, an expired certificate goes to ACME.
 */
import { X509Certificate } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Topology } from '../harness/netns.js';
import { NginxContainer } from '../harness/nginx.js';
import type { StepCa } from '../harness/stepca.js';
import { servedLeafPem } from '../harness/tls-client.js';
import { snapshot } from '../faults/common.js';
import { agentBundle, runAgent } from '../helpers/agent.js';
import { lastRenewalOf, livePublicKey, renewalOf } from '../helpers/renewal-method.js';
import { startSite, type Site } from '../helpers/site.js';
import { useStepCaSuite } from '../helpers/suite.js';

const DOMAIN = 'app.internal';
let nginx: NginxContainer;
/** Parts of the site once started (root: the web container's "/"). */
let topo: Topology, ca: StepCa, root: string, clientDir: string;
const config = () => join(root, 'etc/cert-agent/config.yaml');
const certDir = () => join(root, 'etc/cert-agent/tls');
const stateDir = () => join(root, 'var/lib/cert-agent');
const webroot = () => join(root, 'var/www/acme-challenge');

let site: Site | undefined;

beforeAll(async () => {
  const consumer = { key: 'web', octet: 11, names: [DOMAIN] };
  site = await startSite({ subnet: '10.213.26', caName: 'ca.rekey.internal', consumer, label: 'rekey' });
  ({ topo, ca, root, clientDir } = site);
  nginx = new NginxContainer(topo, 'web', root);
}, 60_000);

afterAll(async () => {
  await nginx?.stop();
  await site?.cleanup();
});

/** nginx's port-80 server with the shipped challenge snippet, or with it emptied (no http-01 can succeed). */
function writeNginx(opts: { tls: boolean; challenge: boolean }): void {
  nginx.writeConfig({
    names: [DOMAIN],
    challenge: 'webroot',
    webroot: webroot(),
    proxyListen: '127.0.0.1:8402',
    certDir: certDir(),
    tls: opts.tls,
  });
  if (!opts.challenge)
    writeFileSync(join(root, 'etc/nginx/snippets/cert-agent-challenge-webroot.conf'), '# taken away by the test\n');
}

/** The agent's config; reload.verify (nginx serves the new serial) once nginx has its TLS server. */
function writeAgentConfig(method: string, verify = true): void {
  const doc = {
    ca: { url: ca.url, fingerprint: ca.rootFingerprint },
    certificate: { domains: [DOMAIN], dir: certDir() },
    challenge: { mode: 'webroot', webroot: webroot() },
    reload: { target: 'nginx', nginx: { config: nginx.conf }, ...(verify ? { verify: '127.0.0.1:443' } : {}) },
    renewal: { method },
    stateDir: stateDir(),
  };
  writeFileSync(config(), JSON.stringify(doc, null, 2), { mode: 0o600 });
}

/** The bundle in the web container's namespace, as the CLI runs; its log read for the renewal's way. */
async function agent(args: string[]) {
  const r = await topo.exec('web', [process.execPath, agentBundle(), ...args, '--config', config()], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, CERT_AGENT_LOG_LEVEL: 'info' },
  });
  const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));
  return { ...r, ...renewalOf(r.stderr), lines };
}

const onDisk = () => new X509Certificate(readFileSync(join(certDir(), 'cert.pem')));
const serialOnDisk = () => onDisk().serialNumber.toLowerCase();

/** The serial nginx serves to the client (SNI, only the pinned root trusted), asked until it is `want` or 10 s passed. */
async function servedSerial(want: string): Promise<string> {
  const caFile = join(clientDir, 'root.pem');
  writeFileSync(caFile, ca.rootPem);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pem = await servedLeafPem(topo, 'client', { host: DOMAIN, port: 443, servername: DOMAIN, caFile });
    const seen = new X509Certificate(pem).serialNumber.toLowerCase();
    if (seen === want || Date.now() > deadline) return seen;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** ACME orders and rekeys step-ca has logged so far (one line per request, with its path). */
function requestsInCaLog(): { orders: number; rekeys: number } {
  const log = readFileSync(join(ca.dir, 'step-ca.log'), 'utf8');
  const count = (re: RegExp) => (log.match(re) ?? []).length;
  return { orders: count(/ path=\/acme\/[^ ]+\/new-order /g), rekeys: count(/ path=\/1\.0\/rekey /g) };
}
const since = (then: { orders: number; rekeys: number }) => {
  const now = requestsInCaLog();
  return { orders: now.orders - then.orders, rekeys: now.rekeys - then.rekeys };
};

/**
 * The HTTP status the CA gets for a file in the webroot's challenge path,
 * asked from the CA's namespace until it is `want` or 10 s passed (an old
 * nginx worker may answer a moment after a reload).
 */
async function challengeAnswer(want: (status: string) => boolean): Promise<string> {
  mkdirSync(join(webroot(), '.well-known/acme-challenge'), { recursive: true, mode: 0o755 });
  writeFileSync(join(webroot(), '.well-known/acme-challenge/probe'), 'probe\n', { mode: 0o644 });
  const url = `http://${DOMAIN}/.well-known/acme-challenge/probe`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await topo.exec('ca', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', url]);
    if (want(r.stdout.trim()) || Date.now() > deadline) return r.stdout.trim();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('renewal over the CA API behind nginx (network namespaces, real step-ca)', () => {
  it('the first certificate is ACME, through nginx on port 80; nginx then serves it', async () => {
    writeNginx({ tls: false, challenge: true });
    await nginx.start({ tls: false });
    writeAgentConfig('auto', false);
    const r = await agent(['renew']);
    expect(r.code, `${r.stderr}\n${nginx.errorLogTail()}`).toBe(0);
    expect(r.installedBy).toEqual(['acme']);
    expect(r.of('renewal_started').map((e) => e.method)).toEqual(['acme']);
    expect(lastRenewalOf(stateDir())).toMatchObject({ method: 'acme' });
    expect(onDisk().keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    writeNginx({ tls: true, challenge: true });
    await nginx.reload({ tls: true });
    writeAgentConfig('auto');
    expect(await servedSerial(serialOnDisk())).toBe(serialOnDisk());
    expect(await challengeAnswer((s) => s === '200')).toBe('200');
  });

  it('with http-01 impossible (the challenge snippet taken away), three renewals by rekey: each a new key, each served', async () => {
    writeNginx({ tls: true, challenge: false });
    await nginx.reload({ tls: true });
    expect(await challengeAnswer((s) => s !== '200')).not.toBe('200');
    const pid = nginx.masterPid();
    const requests = requestsInCaLog();
    const keys = [livePublicKey(certDir())];
    const serials = [serialOnDisk()];
    for (let i = 0; i < 3; i++) {
      const r = await agent(['renew', '--force']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.of('renewal_started').map((e) => e.method)).toEqual(['step']);
      expect(r.installedBy).toEqual(['step']);
      expect(r.fallbacks).toEqual([]);
      expect(keys).not.toContain(livePublicKey(certDir()));
      expect(serials).not.toContain(serialOnDisk());
      keys.push(livePublicKey(certDir()));
      serials.push(serialOnDisk());
      expect(onDisk().subjectAltName).toBe(`DNS:${DOMAIN}`);
      expect(await servedSerial(serialOnDisk())).toBe(serialOnDisk());
    }
    expect(lastRenewalOf(stateDir())).toMatchObject({ method: 'step' });
    expect(lastRenewalOf(stateDir())?.fallback).toBeUndefined();
    expect(nginx.masterPid()).toBe(pid);
    // By the CA's own log: three rekeys, and no ACME order meanwhile.
    expect(since(requests)).toEqual({ orders: 0, rekeys: 3 });
    // What the operator reads: status, the metrics, and doctor's one test renewal (nothing installed).
    const status = await agent(['status']);
    expect(status.stdout).toMatch(/^ {2}renewed by +the CA's renewal API at /m);
    const metrics = await agent(['metrics']);
    expect(metrics.stdout).toMatch(/^cert_agent_last_renewal_method\{certificate="default",method="step"\} 1$/m);
    expect(metrics.stdout).toMatch(/^cert_agent_last_renewal_fallback\{certificate="default"\} 0$/m);
    const serial = serialOnDisk();
    const doctor = await agent(['doctor']);
    expect(doctor.stdout).toMatch(/^ok +client auth +certificate \S+ may authenticate a TLS client/m);
    expect(doctor.stdout).toMatch(
      /^ok +renewal API +\S+ renews certificate \S+ over its API \(one test renewal, checked and dropped\)$/m,
    );
    expect(serialOnDisk()).toBe(serial);
  });

  it('disableRenewal: step fails with one line and keeps the certificate; auto falls back to ACME and succeeds', async () => {
    await ca.setDisableRenewal(true);
    try {
      writeAgentConfig('step');
      const before = snapshot(certDir());
      const step = await agent(['renew', '--force']);
      expect(step.code, step.stderr).toBe(76);
      expect(step.lines).toHaveLength(1);
      expect(step.lines[0]).toMatch(/renewal\.method is step.*HTTP 401.*current certificate is kept/);
      expect(snapshot(certDir())).toEqual(before);
      // doctor says so before a renewal meets it: a problem with step, a warning with auto.
      const stepDoctor = await agent(['doctor']);
      expect(stepDoctor.stdout).toMatch(/^PROBLEM +renewal API +.*HTTP 401.*renewals fail with renewal\.method step/m);
      writeAgentConfig('auto');
      const autoDoctor = await agent(['doctor']);
      expect(autoDoctor.stdout).toMatch(/^WARN +renewal API +.*HTTP 401.*falls back to an ACME order/m);
      expect(snapshot(certDir())).toEqual(before);

      // ACME needs port 80 again.
      writeNginx({ tls: true, challenge: true });
      await nginx.reload({ tls: true });
      writeAgentConfig('auto');
      const auto = await agent(['renew', '--force']);
      expect(auto.code, auto.stderr).toBe(0);
      expect(auto.fallbacks).toHaveLength(1);
      expect(auto.fallbacks[0]).toMatch(/HTTP 401/);
      expect(auto.installedBy).toEqual(['acme']);
      expect(await servedSerial(serialOnDisk())).toBe(serialOnDisk());
      expect(lastRenewalOf(stateDir())).toMatchObject({ method: 'acme', fallback: auto.fallbacks[0] });
      const status = await agent(['status', '--json']);
      expect(JSON.parse(status.stdout).renewal.lastRenewal).toMatchObject({
        method: 'acme',
        fallback: auto.fallbacks[0],
      });
    } finally {
      await ca.setDisableRenewal(false);
    }
  });

  it('the CA recreated with a new root: CRITICAL and re-pin as before; then ACME once, then rekey', async () => {
    const oldFp = ca.rootFingerprint;
    await ca.recreate();
    const newFp = ca.rootFingerprint;
    expect(newFp).not.toBe(oldFp);
    const before = snapshot(certDir());
    const refused = await agent(['renew', '--force']);
    expect(refused.code, refused.stderr).toBe(65);
    expect(refused.lines).toHaveLength(1);
    expect(refused.lines[0]).toMatch(/does not verify against the pinned CA root/);
    expect(snapshot(certDir())).toEqual(before);
    const status = await agent(['status', '--json']);
    expect(status.code).toBe(2);
    const report = JSON.parse(status.stdout) as { ca: object; problems: string[] };
    expect(report.ca).toMatchObject({ trust: 'broken', offeredFingerprints: [newFp] });
    expect(report.problems.join(' ')).toContain(newFp);

    const enroll = await agent(['enroll', '--fingerprint', newFp]);
    expect(enroll.code, enroll.stderr).toBe(0);
    // The live certificate is the old CA's: it cannot be renewed over the API of the new one.
    const acme = await agent(['renew']);
    expect(acme.code, acme.stderr).toBe(0);
    expect(acme.installedBy).toEqual(['acme']);
    expect(acme.fallbacks).toHaveLength(1);
    const rekeyed = await agent(['renew', '--force']);
    expect(rekeyed.code, rekeyed.stderr).toBe(0);
    expect(rekeyed.installedBy).toEqual(['step']);
    expect(rekeyed.fallbacks).toEqual([]);
    expect(await servedSerial(serialOnDisk())).toBe(serialOnDisk());
    expect((await agent(['status'])).code).toBe(0);
  });
});

describe('an expired certificate (20 s certificates, the agent not run past the expiry)', () => {
  let short: StepCa;
  let dir: string;
  useStepCaSuite(
    (c, d) => {
      short = c;
      dir = d;
    },
    { certDuration: '20s', minCertDuration: '10s' },
  );

  /** An agent under dir/name, standalone on the CA's validation port, with `method`; copies `from`'s set and state. */
  function installation(name: string, method: string, from?: string) {
    const base = join(dir, name);
    const paths = { config: join(base, 'config.yaml'), certDir: join(base, 'tls'), stateDir: join(base, 'state') };
    mkdirSync(base, { recursive: true });
    if (from) {
      cpSync(join(dir, from, 'tls'), paths.certDir, { recursive: true, verbatimSymlinks: true });
      cpSync(join(dir, from, 'state'), paths.stateDir, { recursive: true });
    }
    const doc = {
      ca: { url: short.url, fingerprint: short.rootFingerprint },
      certificate: { domains: ['localhost'], dir: paths.certDir },
      challenge: { mode: 'standalone', listen: `127.0.0.1:${short.acmeHttpPort}` },
      renewal: { method },
      stateDir: paths.stateDir,
    };
    writeFileSync(paths.config, JSON.stringify(doc), { mode: 0o600 });
    const run = async (args: string[]) => {
      const r = await runAgent([...args, '--config', paths.config], { env: { CERT_AGENT_LOG_LEVEL: 'info' } });
      return { ...r, ...renewalOf(r.stderr), lines: r.stderr.split('\n').filter((l) => l && !l.startsWith('{')) };
    };
    return { ...paths, run };
  }
  const leafOf = (certDir: string) => new X509Certificate(readFileSync(join(certDir, 'cert.pem')));
  const lifetime = (c: X509Certificate) => Date.parse(c.validTo) - Date.parse(c.validFrom);

  it('a 20 s certificate is rekeyed to another of the same lifetime; once expired, auto renews by ACME, step refuses', async () => {
    const a = installation('auto', 'auto');
    expect((await a.run(['renew'])).installedBy).toEqual(['acme']);
    const first = leafOf(a.certDir);
    const again = await a.run(['renew', '--force']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.installedBy).toEqual(['step']);
    const rekeyed = leafOf(a.certDir);
    expect(lifetime(rekeyed)).toBe(lifetime(first));

    // Nothing runs until the certificate has expired.
    while (Date.now() <= Date.parse(rekeyed.validTo) + 1_000) await new Promise((r) => setTimeout(r, 500));
    const s = installation('step', 'step', 'auto');
    const before = snapshot(s.certDir);
    const refused = await s.run(['renew']);
    expect(refused.code, refused.stderr).toBe(76);
    expect(refused.lines).toHaveLength(1);
    expect(refused.lines[0]).toMatch(/renewal\.method is step.*expired.*current certificate is kept/);
    expect(snapshot(s.certDir)).toEqual(before);

    const expired = await a.run(['renew']);
    expect(expired.code, expired.stderr).toBe(0);
    expect(expired.installedBy).toEqual(['acme']);
    expect(expired.fallbacks).toHaveLength(1);
    expect(expired.fallbacks[0]).toMatch(/expired/);
    expect(Date.parse(leafOf(a.certDir).validTo)).toBeGreaterThan(Date.now());
  }, 90_000);
});
