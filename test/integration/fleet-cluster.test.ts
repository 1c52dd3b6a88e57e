/**
 * The fleet across a Proxmox VE cluster of three nodes, end to end: the CA
 * (103, step-ca) placed on node a, nginx's consumer (101) on node b and
 * Traefik's (102) on node c, each a Debian 13 container booted with
 * systemd-nspawn in a network namespace of its own (10.213.9.0/24), real
 * cert-agent from the .deb installed from a node that is not theirs, real
 * step-ca, nginx and Traefik. The cluster itself is a stand-in
 * (test/harness/cluster.ts): `pvesh`, `ssh` between the nodes and /etc/pve as
 * one directory every node sees; a cluster cannot exist on this machine. The
 * host scripts run unchanged, with dash, "on" a node. Scenarios in order, on
 * one booted fleet: status from every node; the CA recreated on a (the
 * hookscript re-pins b's and c's consumers, which renew from the new root);
 * the CA migrated to b (its recorded root goes with it); the CA recreated
 * while c is down (c's consumer pending, finished once c is back); and
 * without quorum (/etc/pve read-only: the hook says so, nothing is lost).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLEET, HOOK, makeCluster, type Cluster, type NodeName } from '../harness/cluster.js';
import { createTopology, type Topology } from '../harness/netns.js';
import { bootContainer, type Container } from '../harness/nspawn.js';
import { fingerprintOf, makePki, type Pki } from '../harness/pki.js';
import { buildDeb, FLEET_PACKAGES, removeTree, unpackRootfs } from '../harness/rootfs.js';
import { addStepCa, addTraefik, chrootSh, disableNginx, hostsFile, installCaPki } from '../harness/services.js';
import { probeTls } from '../harness/tls-client.js';
import { tempDir } from '../helpers/agent.js';

const REPO = resolve(import.meta.dirname, '../..');
const SUBNET = '10.213.9';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Key = 'ca' | 'web' | 'proxy';
interface Guest {
  key: Key;
  id: number;
  octet: number;
  names: string[];
  node: NodeName;
  root: string;
  ct?: Container;
}
const guests: Record<Key, Guest> = {
  web: { key: 'web', id: 101, octet: 1, names: ['web.cluster.internal'], node: 'b', root: '' },
  proxy: { key: 'proxy', id: 102, octet: 2, names: ['proxy.cluster.internal'], node: 'c', root: '' },
  ca: { key: 'ca', id: 103, octet: 3, names: ['ca.cluster.internal'], node: 'a', root: '' },
};
const consumers = () => [guests.web, guests.proxy];
const RENEWAL = 'renewal:\n  at: 0.55\n  jitter: 0.05\n  check: "* * * * *"\n';

let topo: Topology;
let work: string;
let cl: Cluster;
let pki: Pki;
const env = { CERT_AGENT_FLEET_CA_WAIT: '60' };

const at = (g: Guest, p: string) => join(g.root, p);
function put(g: Guest, p: string, content: string | Buffer, mode = 0o644): void {
  mkdirSync(dirname(at(g, p)), { recursive: true });
  writeFileSync(at(g, p), content);
  chmodSync(at(g, p), mode);
}
/** The container's place in the cluster stand-in: its node's pct view, pid empty while it is off. */
const placeIt = (g: Guest) => cl.place(g.node, g.id, `name=${g.key}\npid=${g.ct?.leader ?? ''}\n`);

async function boot(g: Guest): Promise<void> {
  g.ct = await bootContainer(g.root, 90_000, {
    machine: `cluster-${g.key}-${process.pid}`,
    hostname: g.key,
    netnsPath: `/run/netns/${topo.host(g.key).ns}`,
  });
  placeIt(g);
}
async function powerOff(g: Guest): Promise<void> {
  const c = g.ct;
  g.ct = undefined;
  placeIt(g);
  await c?.shutdown();
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 90_000): Promise<T> {
  const start = Date.now();
  let last: T | undefined;
  for (;;) {
    try {
      last = await fn();
      if (ok(last)) return last;
    } catch (err) {
      last = String(err) as T;
    }
    if (Date.now() - start > ms) throw new Error(`${what}: still ${JSON.stringify(last)} after ${ms} ms`);
    await sleep(250);
  }
}
const caAnswers = async () =>
  (
    await topo.exec(
      'client',
      ['curl', '-sk', '--max-time', '1', '-o', '/dev/null', '-w', '%{http_code}', `https://${SUBNET}.3:9000/health`],
      {
        timeoutMs: 5_000,
      },
    )
  ).stdout.trim() === '200';
/** Both consumers serve a certificate that chains to `p`'s root (a client trusting only it). */
async function servingFrom(p: Pki, only: Guest[] = consumers()): Promise<void> {
  for (const g of only)
    await until(
      `${g.key} serves a certificate from ${p.rootCrt}`,
      () => probeTls(topo, 'client', { host: g.names[0]!, port: 443, servername: g.names[0]!, caFile: p.rootCrt }),
      (h) => h.ok && h.authorized === true,
      150_000,
    );
}
/** The CA container recreated with a new root: off, new PKI, on; its node starts it, then the hook. */
async function recreateCa(label: string): Promise<Pki> {
  const next = await makePki(join(work, `pki-${label}`), `cluster ${label}`);
  await powerOff(guests.ca);
  installCaPki(guests.ca.root, next);
  await chrootSh(guests.ca.root, 'chown -R step:step /etc/step-ca /var/lib/step-ca');
  await boot(guests.ca);
  await until('step-ca answers', caAnswers, (ok) => ok);
  return next;
}
const shared = (f: string) => join(cl.pve, 'cert-agent', f);

beforeAll(async () => {
  work = tempDir('cert-agent-fleet-cluster-');
  cl = makeCluster(join(work, 'cluster'));
  pki = await makePki(join(work, 'pki-1'), 'cluster');
  topo = createTopology(
    [
      ...Object.values(guests).map((g) => ({ key: g.key, octet: g.octet, names: g.names })),
      { key: 'client', octet: 9 },
    ],
    SUBNET,
  );
  const site = Object.values(guests).map((g) => ({ address: `${SUBNET}.${g.octet}`, names: g.names, hostname: g.key }));
  for (const g of Object.values(guests)) {
    g.root = unpackRootfs(FLEET_PACKAGES);
    put(g, 'etc/hostname', `${g.key}\n`);
    put(g, 'etc/hosts', hostsFile(g.key, site));
    disableNginx(g.root);
  }
  await addStepCa(guests.ca.root, pki, { dnsNames: [guests.ca.names[0]!, `${SUBNET}.3`], certDuration: '2m' });
  const names = guests.web.names.join(' ');
  for (const f of readdirSync(join(REPO, 'packaging/nginx')).filter((x) => x.startsWith('cert-agent-')))
    put(guests.web, `etc/nginx/snippets/${f}`, readFileSync(join(REPO, 'packaging/nginx', f)));
  rmSync(at(guests.web, 'etc/nginx/sites-enabled/default'), { force: true });
  put(
    guests.web,
    'etc/nginx/sites-enabled/site.conf',
    `server {\n listen 80;\n server_name ${names};\n include snippets/cert-agent-challenge-proxy.conf;\n}\n` +
      `server {\n listen 443 ssl;\n server_name ${names};\n include snippets/cert-agent-ssl.conf;\n location / { return 200 "web\\n"; }\n}\n`,
  );
  await addTraefik(guests.proxy.root, 'traefik');
  const app = readFileSync(join(REPO, 'packaging/traefik/dynamic/app.example.yml'), 'utf8');
  put(guests.proxy, 'etc/traefik/dynamic/app.yml', app.replace(/rule: .*/, `rule: Host(\`${guests.proxy.names[0]}\`)`));
  for (const g of consumers()) put(g, 'etc/cert-agent/config.yaml', RENEWAL, 0o600);
  await Promise.all(Object.values(guests).map(boot));
  await until('step-ca answers', caAnswers, (ok) => ok);
}, 400_000);

afterAll(async () => {
  for (const g of Object.values(guests)) await g.ct?.shutdown().catch(() => undefined);
  await topo?.cleanup();
  for (const g of Object.values(guests)) if (g.root) removeTree(g.root);
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('the fleet on a three-node cluster: ca on a, web on b, proxy on c', () => {
  it('install from node a into containers of b and c, variables from /etc/pve; the hook records the root there', async () => {
    mkdirSync(join(cl.pve, 'cert-agent'), { recursive: true });
    const common = ['CERT_AGENT_CHALLENGE=proxy', 'CERT_AGENT_VERIFY=127.0.0.1:443', 'CERT_AGENT_MODE=daemon'];
    writeFileSync(
      shared('101.env'),
      [`CERT_AGENT_DOMAINS=${guests.web.names[0]}`, 'CERT_AGENT_RELOAD=nginx', ...common, ''].join('\n'),
    );
    writeFileSync(
      shared('102.env'),
      [
        `CERT_AGENT_DOMAINS=${guests.proxy.names[0]}`,
        'CERT_AGENT_RELOAD=traefik',
        'CERT_AGENT_OWNER=traefik',
        'CERT_AGENT_GROUP=traefik',
        ...common,
        '',
      ].join('\n'),
    );
    const hook = await cl.on('a', HOOK, ['103', 'post-start'], { env });
    expect(hook.stdout).toContain(`recorded CA root ${fingerprintOf(pki.rootPem)} (first run`);
    expect(readFileSync(shared('ca-103.fingerprint'), 'utf8').trim()).toBe(fingerprintOf(pki.rootPem));
    // WAIT=0: the hook does not wait for the first certificate (nginx starts once the placeholder is there).
    const r = await cl.on('a', FLEET, ['install', '101', '102', '--deb', buildDeb()], {
      env: {
        CERT_AGENT_CA_URL: `https://${guests.ca.names[0]}:9000`,
        CERT_AGENT_FINGERPRINT: fingerprintOf(pki.rootPem),
        CERT_AGENT_WAIT: '0',
      },
      limitMs: 600_000,
    });
    expect(r.stdout, r.stderr).toMatch(/^101: postinstall: installing cert-agent_/m);
    expect(r.stdout).toMatch(/^102: postinstall: installing cert-agent_/m);
    expect(r.stdout).not.toMatch(/FAILED \((pct push|node)/);
    await until(
      'nginx starts on the placeholder',
      () => guests.web.ct!.exec(['systemctl', 'start', 'nginx.service']),
      (x) => x.code === 0,
      60_000,
    );
    await servingFrom(pki);
  }, 700_000);

  it('fleet status from each node shows the same rows, each container with its node', async () => {
    const project = (out: string) =>
      (JSON.parse(out) as { containers: Record<string, unknown>[] }).containers.map((c) =>
        [c.id, c.name, c.node, c.certificate, c.state, JSON.stringify(c.pinnedRoots)].join(' '),
      );
    const fp = fingerprintOf(pki.rootPem);
    const rows = [`101 web b default OK ["${fp}"]`, `102 proxy c default OK ["${fp}"]`, '103 ca a  no-agent []'];
    for (const n of ['a', 'b', 'c'] as const) {
      // A renewal's verification may show WARNING for a moment; each node's view settles to the same rows.
      const r = await until(
        `status on ${n}`,
        () => cl.on(n, FLEET, ['status', '--json']),
        (x) => x.code === 0 && JSON.stringify(project(x.stdout)) === JSON.stringify(rows),
        60_000,
      );
      expect(project(r.stdout)).toEqual(rows);
    }
  }, 120_000);

  it('the CA recreated on a: the hook re-pins the consumers on b and c, which renew from the new root', async () => {
    const oldFp = fingerprintOf(pki.rootPem);
    const next = await recreateCa('2');
    const hook = await cl.on('a', HOOK, ['103', 'post-start'], { env, limitMs: 600_000 });
    expect(hook.code, hook.stdout).toBe(0);
    expect(hook.stdout).toContain(`CA root changed: ${oldFp} -> ${fingerprintOf(next.rootPem)}`);
    expect(hook.stdout).toMatch(/101 web: ok \(pinned /);
    expect(hook.stdout).toMatch(/102 proxy: ok \(pinned /);
    await servingFrom(next);
    expect(readFileSync(shared('repin.log'), 'utf8')).toMatch(/CT 102 root .* vouched by "host \S+ ca-hook 103": ok/);
    pki = next;
  }, 600_000);

  it('the CA migrated to node b keeps its recorded root: the hook there finds it unchanged', async () => {
    await powerOff(guests.ca);
    cl.migrate(103, 'a', 'b');
    guests.ca.node = 'b';
    await boot(guests.ca);
    await until('step-ca answers', caAnswers, (ok) => ok);
    const hook = await cl.on('b', HOOK, ['103', 'post-start'], { env });
    expect(hook.stdout).toContain(`CA root unchanged (${fingerprintOf(pki.rootPem)})`);
    expect(hook.code).toBe(0);
    expect(existsSync(join(cl.state('b'), 'ca-103.fingerprint'))).toBe(false);
    const st = await cl.on('c', FLEET, ['status']);
    expect(st.stdout).toMatch(/^103 +ca +b +- +no-agent /m);
  }, 300_000);

  it('node c unreachable during the re-pin: its consumer is pending, finished once c is back', async () => {
    const next = await recreateCa('3');
    cl.down('c', true);
    const hook = await cl.on('b', HOOK, ['103', 'post-start'], { env, limitMs: 600_000 });
    expect(hook.code, hook.stdout).toBe(75);
    expect(hook.stdout).toMatch(/102 -: PENDING \(node c unreachable: offline in the cluster's status/);
    await servingFrom(next, [guests.web]);
    const st = await cl.on('a', FLEET, ['status']);
    expect(st.code).toBe(3);
    // No name: the cluster has no fresh status from a node that is down (pvesh gives none then).
    expect(st.stdout).toMatch(/^102 +- +c +- +UNKNOWN .* node c unreachable/m);
    expect(st.stdout).toMatch(new RegExp(`^pending re-pin: CT 102 to ${fingerprintOf(next.rootPem)} \\(CA 103,`, 'm'));
    cl.down('c', false);
    const done = await cl.on('a', FLEET, ['repin', '--pending'], { env, limitMs: 600_000 });
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^102 proxy: ok \(pinned /m);
    await servingFrom(next);
    expect(existsSync(shared('pending/102'))).toBe(false);
    pki = next;
  }, 600_000);

  it('/etc/pve read-only (no quorum): the hook says so and nothing is lost', async () => {
    const next = await recreateCa('4');
    cl.quorum(false);
    cl.down('c', true);
    const hook = await cl.on('b', HOOK, ['103', 'post-start'], { env, readOnly: true, limitMs: 600_000 });
    expect(hook.code, hook.stdout).toBe(75);
    expect(hook.stdout).toContain('the cluster file system is read-only');
    expect(hook.stdout).toMatch(/102 -: PENDING .*this node only/);
    expect(readFileSync(join(cl.state('b'), 'ca-103.fingerprint'), 'utf8').trim()).toBe(fingerprintOf(next.rootPem));
    await servingFrom(next, [guests.web]);
    // Quorum and node c back; the next start of the CA moves the record up and finishes the re-pin.
    cl.quorum(true);
    cl.down('c', false);
    const later = await cl.on('b', HOOK, ['103', 'post-start'], { env, limitMs: 600_000 });
    expect(later.code, later.stdout).toBe(0);
    expect(later.stdout).toMatch(/102 proxy: ok \(pinned /);
    expect(readFileSync(shared('ca-103.fingerprint'), 'utf8').trim()).toBe(fingerprintOf(next.rootPem));
    await servingFrom(next);
  }, 600_000);
});
