/**
 * Two sites in one nginx container, one agent: app.internal and
 * grafana.internal, each in a `server` block of its own, with two
 * certificates of one configuration (`certificates:`), an ECDSA and an RSA
 * one, each in its own directory with its own reload.verify. A real step-ca
 * in its own network namespace validates http-01 on port 80 of each name
 * through nginx (webroot, workers as www-data); a client in a third
 * namespace, trusting only the pinned root, checks what nginx serves for
 * each name (openssl s_client with SNI).
 *
 * nginx's reloads are counted in nginx's own error log: each `nginx -s
 * reload` is a SIGHUP the master logs as "reconfiguring", whoever sent it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { Topology } from '../harness/netns.js';
import { NginxContainer } from '../harness/nginx.js';
import type { StepCa } from '../harness/stepca.js';
import { startSite, type Site as SiteTopology } from '../helpers/site.js';
import { servedLeafPem } from '../harness/tls-client.js';
import { agentBundle } from '../helpers/agent.js';
import schema from '../../docs/status.schema.json' with { type: 'json' };

const ajv = new Ajv2020({ strict: true, strictRequired: false });
(addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
const validate = ajv.compile(schema);

const SITES = [
  { name: 'app', domain: 'app.internal', keyType: 'ec-p256' },
  { name: 'grafana', domain: 'grafana.internal', keyType: 'rsa-2048' },
] as const;
type Site = (typeof SITES)[number];

let topo: Topology;
let ca: StepCa;
let nginx: NginxContainer;
/** The web container's root directory (its "/"), and the client's copy of the pinned root. */
let root: string;
let clientDir: string;
const config = () => join(root, 'etc/cert-agent/config.yaml');
const certDir = (s: Site) => join(root, 'etc/cert-agent/certs', s.name);
const webroot = () => join(root, 'var/www/acme-challenge');

let site: SiteTopology | undefined;
beforeAll(async () => {
  const consumer = { key: 'web', octet: 11, names: SITES.map((s) => s.domain) };
  site = await startSite({ subnet: '10.213.23', caName: 'ca.sites.internal', consumer, label: 'sites' });
  ({ topo, ca, root, clientDir } = site);
  nginx = new NginxContainer(topo, 'web', root);
}, 60_000);

afterAll(() => site?.cleanup());

/**
 * The port-80 server for both names (the shipped webroot snippet), and with
 * `tls` one 443 server per site. `keyFile` replaces a site's
 * ssl_certificate_key (the published key.pem unless given).
 */
function writeNginx(tls: boolean, keyFile: Partial<Record<Site['name'], string>> = {}): void {
  const servers = SITES.map(
    (s) => `  server {
    listen 443 ssl;
    server_name ${s.domain};
    ssl_certificate     ${certDir(s)}/fullchain.pem;
    ssl_certificate_key ${keyFile[s.name] ?? `${certDir(s)}/key.pem`};
    location / { return 200 "${s.name}\\n"; }
  }
`,
  ).join('');
  nginx.writeConfig({
    names: SITES.map((s) => s.domain),
    challenge: 'webroot',
    webroot: webroot(),
    proxyListen: '127.0.0.1:8402',
    certDir: certDir(SITES[0]),
    tls: false,
    ...(tls ? { extra: servers } : {}),
  });
}

/** Two certificates in one file; reload.verify per certificate once nginx serves TLS. */
function writeAgentConfig(verify: boolean): void {
  const doc = {
    ca: { url: ca.url, fingerprint: ca.rootFingerprint },
    challenge: { mode: 'webroot', webroot: webroot() },
    reload: { target: 'nginx', nginx: { config: nginx.conf } },
    stateDir: join(root, 'var/lib/cert-agent'),
    certificates: SITES.map((s) => ({
      name: s.name,
      domains: [s.domain],
      keyType: s.keyType,
      dir: certDir(s),
      ...(verify ? { reload: { verify: '127.0.0.1:443' } } : {}),
    })),
  };
  writeFileSync(config(), JSON.stringify(doc, null, 2), { mode: 0o600 });
}

type Event = Record<string, unknown>;

/** The bundle in the web container's namespace, as the CLI runs; its JSON log lines parsed. */
async function agent(args: string[]) {
  const r = await topo.exec('web', [process.execPath, agentBundle(), ...args, '--config', config()], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, CERT_AGENT_LOG_LEVEL: 'info' },
  });
  const events = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Event);
  return { ...r, events, of: (event: string) => events.filter((e) => e.event === event) };
}

/** SIGHUPs the nginx master has logged so far: one per `nginx -s reload`. */
function reloadsSoFar(): number {
  return readFileSync(nginx.errorLog, 'utf8')
    .split('\n')
    .filter((l) => /signal 1 \(SIGHUP\) received from \d+, reconfiguring/.test(l)).length;
}

/**
 * The test's own reload of nginx, done once nginx has logged it: the master
 * writes "reconfiguring" a moment after the signal, and a count taken before
 * that would give the agent's run this reload too.
 */
async function reloadLogged(opts: { tls: boolean }): Promise<void> {
  const before = reloadsSoFar();
  await nginx.reload(opts);
  const deadline = Date.now() + 10_000;
  while (reloadsSoFar() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/** Runs the agent and counts the reloads nginx itself logged meanwhile. */
async function agentCountingReloads(args: string[]) {
  const before = reloadsSoFar();
  const r = await agent(args);
  return { ...r, reloads: reloadsSoFar() - before };
}

function onDisk(s: Site): X509Certificate {
  return new X509Certificate(readFileSync(join(certDir(s), 'cert.pem')));
}
const serialOnDisk = (s: Site) => onDisk(s).serialNumber.toLowerCase();

/** What nginx serves for one name, seen from the client namespace with SNI, trusting only the pinned root. */
async function served(s: Site): Promise<X509Certificate> {
  const caFile = join(clientDir, 'root.pem');
  writeFileSync(caFile, ca.rootPem);
  return new X509Certificate(
    await servedLeafPem(topo, 'client', { host: s.domain, port: 443, servername: s.domain, caFile }),
  );
}

/**
 * The serial served for one name, asked until it is `want` or 10 s have
 * passed: after a reload the old workers may still answer a new connection
 * for a moment, so one handshake that saw the new serial (the agent's
 * verify) does not mean every later one does.
 */
async function servedSerial(s: Site, want: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const seen = (await served(s)).serialNumber.toLowerCase();
    if (seen === want || Date.now() > deadline) return seen;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function expectKeyType(cert: X509Certificate, s: Site): void {
  if (s.keyType === 'ec-p256') {
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  } else {
    expect(cert.publicKey.asymmetricKeyType).toBe('rsa');
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  }
}

/** Each certificate's events of a pass, by name: what was installed and what reloaded it. */
function perCertificate(r: Awaited<ReturnType<typeof agent>>, event: string): Record<string, Event[]> {
  const out: Record<string, Event[]> = {};
  for (const e of r.of(event)) (out[String(e.certificate)] ??= []).push(e);
  return out;
}

describe('nginx with two server blocks and two certificates (ECDSA and RSA), one agent', () => {
  it('one `renew` issues both in one pass, through nginx on port 80, and reloads nginx once', async () => {
    // nginx refuses to start while ssl_certificate names a missing file: port 80 only for now.
    writeNginx(false);
    await nginx.start({ tls: false });
    writeAgentConfig(false);
    const r = await agentCountingReloads(['renew']);
    expect(r.code, `${r.stderr}\n${nginx.errorLogTail()}`).toBe(0);
    for (const s of SITES) {
      expect(r.stdout).toContain(s.name);
      expect(r.of('renewal_started').map((e) => e.certificate)).toContain(s.name);
      const cert = onDisk(s);
      expect(cert.subjectAltName).toBe(`DNS:${s.domain}`);
      expectKeyType(cert, s);
    }
    const installed = perCertificate(r, 'certificate_installed');
    const reloaded = perCertificate(r, 'reload_done');
    for (const s of SITES) {
      expect(installed[s.name]).toHaveLength(1);
      expect(reloaded[s.name]).toMatchObject([{ target: 'nginx', serial: serialOnDisk(s) }]);
    }
    // Both installed before the consumer was touched; one reload for the two, by nginx's own count.
    const at = (e: Event) => r.events.indexOf(e);
    expect(Math.max(...r.of('certificate_installed').map(at))).toBeLessThan(Math.min(...r.of('reload_done').map(at)));
    expect(r.reloads).toBe(1);
    expect(r.of('reload_failed')).toEqual([]);
    // The CA fetched the tokens through nginx; none is left behind.
    expect(readFileSync(nginx.errorLog, 'utf8')).not.toMatch(/acme-challenge.*(failed|forbidden)/);
  });

  it('serves each name with its own certificate by SNI, verified to the pinned root', async () => {
    writeNginx(true);
    await reloadLogged({ tls: true });
    writeAgentConfig(true);
    const seen = new Set<string>();
    for (const s of SITES) {
      const cert = await served(s);
      expect(cert.serialNumber.toLowerCase()).toBe(serialOnDisk(s));
      expect(cert.subjectAltName).toBe(`DNS:${s.domain}`);
      expectKeyType(cert, s);
      seen.add(cert.serialNumber);
    }
    expect(seen.size).toBe(2);
  });

  it('renew --force of both: one pass, nginx reloaded once, each served serial verified by SNI', async () => {
    const before = SITES.map(serialOnDisk);
    const pid = nginx.masterPid();
    const r = await agentCountingReloads(['renew', '--force']);
    expect(r.code, `${r.stderr}\n${nginx.errorLogTail()}`).toBe(0);
    expect(r.reloads).toBe(1);
    const reloaded = perCertificate(r, 'reload_done');
    for (const [i, s] of SITES.entries()) {
      const serial = serialOnDisk(s);
      expect(serial).not.toBe(before[i]);
      // reload.verify: a handshake with this certificate's name as SNI saw its new serial.
      expect(reloaded[s.name]).toHaveLength(1);
      expect(String(reloaded[s.name]?.[0]?.detail)).toBe(`nginx serves serial ${serial} on 127.0.0.1:443`);
      expect(await servedSerial(s, serial)).toBe(serial);
    }
    expect(nginx.masterPid()).toBe(pid);
  });

  it('status, status --line, status --json and metrics show both, each by name', async () => {
    const text = await agent(['status']);
    expect(text.code, text.stdout).toBe(0);
    expect(text.stdout).toMatch(/^cert-agent OK - 2 certificates: app OK, grafana OK/);
    for (const s of SITES) expect(text.stdout).toContain(serialOnDisk(s));

    const line = await agent(['status', '--line']);
    expect(line.code).toBe(0);
    const rows = line.stdout.split('\n').filter(Boolean);
    expect(rows).toHaveLength(2);
    for (const [i, s] of SITES.entries()) {
      const fields = (rows[i] as string).split('\t');
      expect(fields).toHaveLength(8);
      expect(fields[0]).toBe('v2');
      expect(fields[1]).toBe('OK');
      expect(fields[2]).toBe(s.domain);
      expect(fields[6]).toBe('-');
      expect(fields[7]).toBe(s.name);
    }

    const json = await agent(['status', '--json']);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    expect(doc.status).toBe('OK');
    expect(doc.certificates).toHaveLength(2);
    for (const [i, s] of SITES.entries()) {
      expect(doc.certificates[i]).toMatchObject({
        name: s.name,
        status: 'OK',
        certificate: { serial: serialOnDisk(s) },
        reload: { target: 'nginx' },
      });
    }

    const metrics = await agent(['metrics']);
    expect(metrics.code).toBe(0);
    const families = parsePrometheusTextFormat(metrics.stdout);
    const status = families.find((f) => f.name === 'cert_agent_certificate_status');
    const labels = (status?.metrics ?? []).map((m) => (m as { labels?: Record<string, string> }).labels?.certificate);
    expect(labels.sort()).toEqual(['app', 'grafana']);
    for (const m of status?.metrics ?? []) expect((m as { value: string }).value).toBe('0');
    const info = families.find((f) => f.name === 'cert_agent_certificate_info');
    for (const s of SITES) {
      const sample = info?.metrics.find(
        (m) => (m as { labels?: Record<string, string> }).labels?.certificate === s.name,
      ) as { labels: Record<string, string> } | undefined;
      expect(sample?.labels.serial).toBe(serialOnDisk(s));
    }
  });

  it('renew --force --name grafana renews only grafana, and reloads nginx once', async () => {
    const app = serialOnDisk(SITES[0]);
    const grafana = serialOnDisk(SITES[1]);
    const r = await agentCountingReloads(['renew', '--force', '--name', 'grafana']);
    expect(r.code, `${r.stderr}\n${nginx.errorLogTail()}`).toBe(0);
    expect(r.reloads).toBe(1);
    const named = new Set(r.events.filter((e) => e.certificate !== undefined).map((e) => e.certificate));
    expect([...named]).toEqual(['grafana']);
    expect(serialOnDisk(SITES[0])).toBe(app);
    expect(serialOnDisk(SITES[1])).not.toBe(grafana);
    expect(r.of('reload_done')).toMatchObject([{ certificate: 'grafana', serial: serialOnDisk(SITES[1]) }]);
    expect(await servedSerial(SITES[0], app)).toBe(app);
    expect(await servedSerial(SITES[1], serialOnDisk(SITES[1]))).toBe(serialOnDisk(SITES[1]));
  });

  it("nginx -t refuses one certificate's new files: only that one is rolled back, the other goes live with one reload", async () => {
    const [app, grafana] = SITES;
    // An operator's mistake nginx only finds with the new files: grafana's key
    // named by the resolved path of today's set (.sets/<id>/key.pem) instead
    // of the published key.pem. It pairs with today's certificate, so nginx
    // takes it now; after a renewal fullchain.pem is the new certificate and
    // that key no longer matches it.
    const pinnedKey = realpathSync(join(certDir(grafana), 'key.pem'));
    expect(pinnedKey.startsWith(`${certDir(grafana)}/.sets/`)).toBe(true);
    writeNginx(true, { grafana: pinnedKey });
    await reloadLogged({ tls: true });
    const before = { app: serialOnDisk(app), grafana: serialOnDisk(grafana) };
    try {
      const r = await agentCountingReloads(['renew', '--force']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/^cert-agent: certificate grafana: nginx -t failed .*key values mismatch/m);
      expect(r.stderr).not.toMatch(/certificate app:/);
      // grafana: refused, its previous set restored and still served.
      const failed = r.of('reload_failed');
      expect(failed.map((e) => e.certificate)).toEqual(['grafana']);
      expect(String(failed[0]?.error)).toMatch(
        new RegExp(`SSL_CTX_use_PrivateKey\\("${pinnedKey.replace(/[.]/g, '\\.')}"\\) failed.*key values mismatch`),
      );
      expect(String(failed[0]?.error)).toMatch(/the previous certificate set was restored$/);
      expect(serialOnDisk(grafana)).toBe(before.grafana);
      expect(await servedSerial(grafana, before.grafana)).toBe(before.grafana);
      // app: its new set live, nginx reloaded once (after the refusal, without grafana's new files), verified.
      expect(serialOnDisk(app)).not.toBe(before.app);
      expect(r.of('reload_done')).toMatchObject([
        { certificate: 'app', detail: `nginx serves serial ${serialOnDisk(app)} on 127.0.0.1:443` },
      ]);
      expect(r.reloads).toBe(1);
      expect(await servedSerial(app, serialOnDisk(app))).toBe(serialOnDisk(app));
      // status: grafana alone is WARNING, with nginx's reason.
      const json = await agent(['status', '--json']);
      expect(json.code).toBe(1);
      const doc = JSON.parse(json.stdout);
      expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
      expect(doc.certificates.map((c: { name: string; status: string }) => [c.name, c.status])).toEqual([
        ['app', 'OK'],
        ['grafana', 'WARNING'],
      ]);
      expect(doc.certificates[1].reload.lastResult).toMatchObject({ ok: false });
    } finally {
      writeNginx(true);
      await reloadLogged({ tls: true });
    }
  });
});
