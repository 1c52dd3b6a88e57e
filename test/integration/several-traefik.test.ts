/**
 * Two routers in one Traefik container, one agent: app.internal and
 * grafana.internal, each a router of the operator's own with `tls: {}`, and
 * two certificates of one configuration (`certificates:`, an ECDSA and an
 * RSA one), each in a dynamic file of its own in the directory Traefik's file
 * provider watches. Traefik is the real binary on the shipped static
 * configuration, running as a user of its own (an unused uid and gid, only
 * CAP_NET_BIND_SERVICE) that reads the certificates through their group. A
 * real step-ca in its own network namespace validates http-01 on port 80 of
 * each name through Traefik (proxy mode); a client in a third namespace,
 * trusting only the pinned root, checks what Traefik serves for each name.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Topology } from '../harness/netns.js';
import type { StepCa } from '../harness/stepca.js';
import { startSite, type Site as SiteTopology } from '../helpers/site.js';
import { servedLeafPem } from '../harness/tls-client.js';
import { TraefikContainer } from '../harness/traefik.js';
import { agentBundle } from '../helpers/agent.js';

const SITES = [
  { name: 'app', domain: 'app.internal', keyType: 'ec-p256' },
  { name: 'grafana', domain: 'grafana.internal', keyType: 'rsa-2048' },
] as const;
type Site = (typeof SITES)[number];
const ANSI = /\x1b\[[0-9;]*m/g;

let topo: Topology;
let ca: StepCa;
let traefik: TraefikContainer;
let root: string;
let clientDir: string;
/** Traefik's own ids: unused on this machine, so it reads nothing but what is given to its group. */
let traefikIds: { uid: number; gid: number };
const config = () => join(root, 'etc/cert-agent/config.yaml');
const certDir = (s: Site) => join(root, 'etc/cert-agent/certs', s.name);
const dynamicFile = (s: Site) => join(traefik.dynamicDir, `cert-agent-${s.name}.yml`);

/** A uid and gid that no account or group of this machine has. */
function unusedIds(): { uid: number; gid: number } {
  const ids = (file: string) =>
    new Set(
      readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => Number(l.split(':')[2])),
    );
  const uids = ids('/etc/passwd');
  const gids = ids('/etc/group');
  for (let id = 61_023; id < 62_000; id++) if (!uids.has(id) && !gids.has(id)) return { uid: id, gid: id };
  throw new Error('no unused id between 61023 and 62000');
}

let site: SiteTopology | undefined;
beforeAll(async () => {
  const consumer = { key: 'proxy', octet: 12, names: SITES.map((s) => s.domain) };
  site = await startSite({ subnet: '10.213.24', caName: 'ca.sites.internal', consumer, label: 'sites' });
  ({ topo, ca, root, clientDir } = site);
  // The container root stands in for "/", which Traefik's user may traverse; /etc/cert-agent as the package makes it.
  chmodSync(root, 0o755);
  traefikIds = unusedIds();
  traefik = new TraefikContainer(topo, 'proxy', root);
}, 60_000);

afterAll(() => site?.cleanup());

/** The operator's own routers, one per site (the shipped example's shape), next to the agent's files. */
function writeRouters(): void {
  const routers = Object.fromEntries(
    SITES.map((s) => [s.name, { rule: `Host(\`${s.domain}\`)`, entryPoints: ['websecure'], tls: {}, service: s.name }]),
  );
  const services = Object.fromEntries(
    // No backend runs here; a TLS handshake does not need one.
    SITES.map((s) => [s.name, { loadBalancer: { servers: [{ url: 'http://127.0.0.1:8080' }] } }]),
  );
  writeFileSync(join(traefik.dynamicDir, 'app.yml'), JSON.stringify({ http: { routers, services } }, null, 2));
}

function writeAgentConfig(): void {
  const doc = {
    ca: { url: ca.url, fingerprint: ca.rootFingerprint },
    challenge: { mode: 'proxy' },
    reload: {
      target: 'traefik',
      traefik: { dynamicFile: join(traefik.dynamicDir, 'cert-agent.yml') },
      verify: '127.0.0.1:443',
    },
    stateDir: join(root, 'var/lib/cert-agent'),
    certificates: SITES.map((s) => ({
      name: s.name,
      domains: [s.domain],
      keyType: s.keyType,
      dir: certDir(s),
      group: String(traefikIds.gid),
    })),
  };
  writeFileSync(config(), JSON.stringify(doc, null, 2), { mode: 0o600 });
}

type Event = Record<string, unknown>;

async function agent(args: string[]) {
  const r = await topo.exec('proxy', [process.execPath, agentBundle(), ...args, '--config', config()], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, CERT_AGENT_LOG_LEVEL: 'info' },
  });
  const events = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Event);
  return { ...r, events, of: (event: string) => events.filter((e) => e.event === event) };
}

const serialOnDisk = (s: Site) =>
  new X509Certificate(readFileSync(join(certDir(s), 'cert.pem'))).serialNumber.toLowerCase();

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

describe('Traefik with two routers and two certificates, each in a dynamic file of its own', () => {
  it('one `renew` issues both in one pass through Traefik on port 80, and Traefik serves each by SNI', async () => {
    traefik.writeConfig(SITES.map((s) => s.domain));
    writeRouters();
    await traefik.start({ runAs: traefikIds });
    // Traefik itself (ip netns exec and setpriv exec it in place) runs under its own ids.
    const proc = readFileSync(`/proc/${traefik.pid()}/status`, 'utf8');
    expect(proc).toMatch(new RegExp(`^Uid:\\s+${traefikIds.uid}\\s+${traefikIds.uid}\\s`, 'm'));
    expect(proc).toMatch(new RegExp(`^Gid:\\s+${traefikIds.gid}\\s+${traefikIds.gid}\\s`, 'm'));
    writeAgentConfig();
    const r = await agent(['renew']);
    expect(r.code, `${r.stderr}\n${traefik.logTail()}`).toBe(0);
    for (const s of SITES) {
      expect(r.of('certificate_installed').filter((e) => e.certificate === s.name)).toHaveLength(1);
      // reload.verify: a handshake with this certificate's name as SNI saw its serial.
      expect(r.of('reload_done').filter((e) => e.certificate === s.name)).toMatchObject([
        {
          target: 'traefik',
          serial: serialOnDisk(s),
          detail: `traefik serves serial ${serialOnDisk(s)} on 127.0.0.1:443`,
        },
      ]);
      const cert = await served(s);
      expect(cert.serialNumber.toLowerCase()).toBe(serialOnDisk(s));
      expect(cert.subjectAltName).toBe(`DNS:${s.domain}`);
      expectKeyType(cert, s);
    }
    expect(r.of('reload_failed')).toEqual([]);
    expect(serialOnDisk(SITES[0])).not.toBe(serialOnDisk(SITES[1]));
  });

  it('each certificate has its own dynamic file; only the first names the default certificate', () => {
    expect(readdirSync(traefik.dynamicDir).sort()).toEqual(['app.yml', 'cert-agent-app.yml', 'cert-agent-grafana.yml']);
    const app = readFileSync(dynamicFile(SITES[0]), 'utf8');
    const grafana = readFileSync(dynamicFile(SITES[1]), 'utf8');
    expect(app).toContain(`# serial: ${serialOnDisk(SITES[0])}`);
    expect(grafana).toContain(`# serial: ${serialOnDisk(SITES[1])}`);
    expect(app).toMatch(/stores:\s+default:\s+defaultCertificate:/);
    expect(grafana).not.toMatch(/stores|defaultCertificate/);
    // Each names files of its own certificate's live set, and its own challenge router.
    expect(app).toContain(`${certDir(SITES[0])}/.sets/`);
    expect(app).not.toContain(certDir(SITES[1]));
    expect(grafana).toContain(`${certDir(SITES[1])}/.sets/`);
    expect(grafana).not.toContain(certDir(SITES[0]));
    expect(app).toContain('cert-agent-acme-app:');
    expect(grafana).toContain('cert-agent-acme-grafana:');
    expect(existsSync(join(traefik.dynamicDir, 'cert-agent.yml'))).toBe(false);
  });

  it('renew --force of both: Traefik serves both new serials without a restart', async () => {
    const before = SITES.map(serialOnDisk);
    const pid = traefik.pid();
    const r = await agent(['renew', '--force']);
    expect(r.code, `${r.stderr}\n${traefik.logTail()}`).toBe(0);
    for (const [i, s] of SITES.entries()) {
      expect(serialOnDisk(s)).not.toBe(before[i]);
      expect(await servedSerial(s, serialOnDisk(s))).toBe(serialOnDisk(s));
    }
    expect(traefik.pid()).toBe(pid);
  });

  it("Traefik's log shows no conflict and no error", () => {
    // Traefik colours its levels (\x1b[31mERR\x1b[0m): read the text without them.
    const log = readFileSync(traefik.logFile, 'utf8').replace(ANSI, '');
    // What Traefik 3 logs for a TLS store or certificate defined twice (see the next test).
    expect(log).not.toMatch(/already configured|conflict/i);
    expect(log.split('\n').filter((l) => /\bERR\b/.test(l))).toEqual([]);
  });

  it('a default store in a second file is the conflict Traefik logs (what the agent avoids)', async () => {
    const twice = join(traefik.dynamicDir, 'store-twice.yml');
    const logged = () => readFileSync(traefik.logFile, 'utf8').replace(ANSI, '');
    const before = logged().length;
    writeFileSync(twice, readFileSync(dynamicFile(SITES[0]), 'utf8').replace(/cert-agent-acme-app/g, 'store-twice'));
    const conflict = /WRN store already configured, skipping origin=store-twice\.yml .*storeName=default/;
    try {
      for (const until = Date.now() + 10_000; Date.now() < until && !conflict.test(logged().slice(before));)
        await new Promise((r) => setTimeout(r, 200));
      expect(logged().slice(before)).toMatch(conflict);
    } finally {
      rmSync(twice);
    }
  });
});
