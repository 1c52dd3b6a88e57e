/**
 * The three-container topology of a Proxmox site without a shared mount: a step-ca "container", an
 * nginx "container" and a Traefik "container", each in its own network
 * namespace with its own address, port 80 and name resolution, plus a client
 * namespace. Each consumer has its own root directory (config, certificates,
 * state, proxy configuration) and its own copy of the bundle, run with
 * `ip netns exec`; step-ca validates http-01 on port 80 of each name, through
 * the consumer's proxy. A TLS client in the client namespace, trusting only
 * the pinned root, checks what each proxy serves.
 */
import { X509Certificate } from 'node:crypto';
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopology, type Topology } from '../harness/netns.js';
import { probeTls, startTlsLoop } from '../harness/tls-client.js';
import { NginxContainer } from '../harness/nginx.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { TraefikContainer } from '../harness/traefik.js';
import { agentBundle, tempDir } from '../helpers/agent.js';

const NGINX_NAMES = ['nginx.test.internal', 'www.nginx.test.internal'];
const TRAEFIK_NAMES = ['traefik.test.internal'];

let topo: Topology;
let ca: StepCa;
let nginx: NginxContainer;
let traefik: TraefikContainer;
let clientRoot: string;

/** One consumer container as the agent sees it: its own root, config and copy of the bundle. */
interface Consumer {
  key: string;
  root: string;
  bundle: string;
  config: string;
  certDir: string;
  stateDir: string;
}
let ng: Consumer;
let tr: Consumer;

function consumer(key: string): Consumer {
  const root = tempDir(`cert-agent-${key}-root-`);
  const bundle = join(root, 'usr/lib/cert-agent/cert-agent.cjs');
  mkdirSync(join(root, 'usr/lib/cert-agent'), { recursive: true });
  mkdirSync(join(root, 'etc/cert-agent'), { recursive: true });
  copyFileSync(agentBundle(), bundle);
  return {
    key,
    root,
    bundle,
    config: join(root, 'etc/cert-agent/config.yaml'),
    certDir: join(root, 'etc/cert-agent/tls'),
    stateDir: join(root, 'var/lib/cert-agent'),
  };
}

function writeAgentConfig(c: Consumer, doc: Record<string, unknown>): void {
  writeFileSync(
    c.config,
    JSON.stringify(
      {
        ca: { url: ca.url, fingerprint: ca.rootFingerprint },
        certificate: { dir: c.certDir },
        stateDir: c.stateDir,
        // The challenge routes through each proxy are the subject: every renewal is an ACME order.
        renewal: { method: 'acme' },
        ...doc,
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
}

async function agent(c: Consumer, args: string[]) {
  const r = await topo.exec(c.key, [process.execPath, c.bundle, ...args, '--config', c.config], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: c.root, CERT_AGENT_LOG_LEVEL: 'info' },
  });
  return {
    ...r,
    events: r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/**
 * The serial the client is served, asked until it is `want` or 10 s passed:
 * for a moment after a reload an old nginx worker may still answer.
 */
async function servedEventually(target: Parameters<typeof probeTls>[2], want: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const seen = (await probeTls(topo, 'client', target)).serial ?? '';
    if (seen === want || Date.now() > deadline) return seen;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function liveSerial(c: Consumer): string {
  return new X509Certificate(readFileSync(join(c.certDir, 'cert.pem'))).serialNumber.toLowerCase();
}

/** The client's own copy of the pinned root (taken from the consumer's ca.pem, checked against the pin). */
function clientRootFile(c: Consumer): string {
  const pem = readFileSync(join(c.certDir, 'ca.pem'), 'utf8');
  expect(new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase()).toBe(ca.rootFingerprint);
  const file = join(clientRoot, `${c.key}-root.pem`);
  writeFileSync(file, pem);
  return file;
}

const nginxTarget = () => ({
  host: NGINX_NAMES[0] as string,
  port: 443,
  servername: NGINX_NAMES[0] as string,
  caFile: join(clientRoot, 'nginx-root.pem'),
});
const traefikTarget = () => ({
  host: TRAEFIK_NAMES[0] as string,
  port: 443,
  servername: TRAEFIK_NAMES[0] as string,
  caFile: join(clientRoot, 'traefik-root.pem'),
});

function nginxSite(challenge: 'webroot' | 'proxy', tls: boolean, extra?: string) {
  return {
    names: NGINX_NAMES,
    challenge,
    webroot: join(ng.root, 'var/www/acme-challenge'),
    proxyListen: '127.0.0.1:8402',
    certDir: ng.certDir,
    tls,
    ...(extra ? { extra } : {}),
  };
}

function nginxAgentConfig(challenge: 'webroot' | 'proxy', verify: boolean) {
  writeAgentConfig(ng, {
    certificate: { domains: NGINX_NAMES, dir: ng.certDir },
    challenge:
      challenge === 'webroot'
        ? { mode: 'webroot', webroot: join(ng.root, 'var/www/acme-challenge') }
        : { mode: 'proxy' },
    reload: { target: 'nginx', nginx: { config: nginx.conf }, ...(verify ? { verify: '127.0.0.1:443' } : {}) },
  });
}

beforeAll(async () => {
  topo = createTopology([
    { key: 'ca', octet: 10, names: ['ca.test.internal'] },
    { key: 'nginx', octet: 11, names: NGINX_NAMES },
    { key: 'traefik', octet: 12, names: TRAEFIK_NAMES },
    { key: 'client', octet: 20 },
  ]);
  // Two-minute certificates (three with step-ca's minute of backdating), so
  // the daemon's scheduled renewal happens within the test.
  ca = await startStepCa({
    certDuration: '2m',
    netns: { ns: topo.host('ca').ns, address: topo.host('ca').address, port: 443, dnsNames: ['ca.test.internal'] },
  });
  clientRoot = tempDir('cert-agent-client-root-');
  ng = consumer('nginx');
  tr = consumer('traefik');
  nginx = new NginxContainer(topo, 'nginx', ng.root);
  traefik = new TraefikContainer(topo, 'traefik', tr.root);
}, 60_000);

afterAll(async () => {
  await ca?.cleanup();
  await topo?.cleanup();
  for (const d of [ng?.root, tr?.root, clientRoot]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('nginx container', () => {
  it('takes its first certificate through nginx on port 80 (webroot) and reloads nginx', async () => {
    // nginx refuses to start while ssl_certificate names a missing file, so
    // the container starts with the port-80 server only (see packaging/nginx).
    nginx.writeConfig(nginxSite('webroot', false));
    await nginx.start({ tls: false });
    nginxAgentConfig('webroot', false);
    const r = await agent(ng, ['renew']);
    expect(r.stderr + nginx.errorLogTail()).not.toMatch(/reload_failed/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^renewed \(no certificate installed\)/);
    expect(readdirSync(join(ng.root, 'var/www/acme-challenge'))).toEqual([]);
  });

  it('serves it on 443 to a client in another namespace that trusts only the pinned root', async () => {
    nginx.writeConfig(nginxSite('webroot', true));
    await nginx.reload({ tls: true });
    nginxAgentConfig('webroot', true);
    clientRootFile(ng);
    for (const name of NGINX_NAMES) {
      const seen = await probeTls(topo, 'client', { ...nginxTarget(), host: name, servername: name });
      expect(seen).toMatchObject({ ok: true, authorized: true, serial: liveSerial(ng) });
      expect(seen.subjectAltName).toContain(`DNS:${name}`);
    }
  });

  it('renew --force: nginx serves the new serial without a restart, confirmed by reload.verify', async () => {
    const before = liveSerial(ng);
    const pid = nginx.masterPid();
    const r = await agent(ng, ['renew', '--force']);
    expect(r.code, r.stderr).toBe(0);
    const after = liveSerial(ng);
    expect(after).not.toBe(before);
    expect(r.stdout).toContain(`nginx serves serial ${after} on 127.0.0.1:443`);
    expect(await servedEventually(nginxTarget(), after)).toBe(after);
    expect(nginx.masterPid()).toBe(pid);
    const state = JSON.parse(readFileSync(join(ng.stateDir, 'state.json'), 'utf8'));
    expect(state.reload).toMatchObject({ target: 'nginx', ok: true, servedSerial: after });
  });

  it('proxy mode: the challenge reaches the agent through nginx proxy_pass', async () => {
    nginx.writeConfig(nginxSite('proxy', true));
    await nginx.reload({ tls: true });
    nginxAgentConfig('proxy', true);
    const before = liveSerial(ng);
    const r = await agent(ng, ['renew', '--force']);
    expect(r.code, r.stderr).toBe(0);
    const after = liveSerial(ng);
    expect(after).not.toBe(before);
    expect(await servedEventually(nginxTarget(), after)).toBe(after);
  });

  it('a broken nginx configuration at reload time: previous set restored, old certificate still served, failure in log and status', async () => {
    const served = liveSerial(ng);
    const pid = nginx.masterPid();
    // What an operator's half-finished edit looks like to `nginx -t`.
    nginx.writeConfig(nginxSite('proxy', true, '  server { listen 8080; this_is_not_a_directive on; }\n'));
    const r = await agent(ng, ['renew', '--force']);
    expect(r.code).toBe(1);
    const failed = r.events.find((e) => e.event === 'reload_failed');
    expect(failed?.error).toMatch(
      /nginx -t failed .*this_is_not_a_directive.*the previous certificate set was restored/,
    );
    expect(liveSerial(ng)).toBe(served);
    expect(await servedEventually(nginxTarget(), served)).toBe(served);
    expect(nginx.masterPid()).toBe(pid);
    const status = await agent(ng, ['status', '--json']);
    expect(status.code).toBe(1);
    const doc = JSON.parse(status.stdout);
    expect(doc.status).toBe('WARNING');
    expect(doc.certificate.serial).toBe(served);
    expect(doc.reload.target).toBe('nginx');
    expect(doc.reload.lastResult.ok).toBe(false);
    expect(doc.reload.lastResult.detail).toMatch(/nginx -t failed/);
    const text = await agent(ng, ['status']);
    expect(text.stdout).toMatch(/nginx -t failed/);

    // Repaired: the next renewal goes through again.
    nginx.writeConfig(nginxSite('proxy', true));
    const again = await agent(ng, ['renew', '--force']);
    expect(again.code, again.stderr).toBe(0);
    expect(await servedEventually(nginxTarget(), liveSerial(ng))).toBe(liveSerial(ng));
    expect((await agent(ng, ['status'])).code).toBe(0);
  });
  it('nginx -t passes but the master refuses the reload (a port taken): reload.verify catches it, the failure is in log and state', async () => {
    const served = liveSerial(ng);
    const pid = nginx.masterPid();
    // `nginx -t` does not bind sockets, so only the master finds port 8444 taken.
    const blocker = topo.spawn('nginx', [
      process.execPath,
      '-e',
      "require('node:net').createServer().listen(8444, '127.0.0.1')",
    ]);
    try {
      await topo.waitForPort('nginx', 8444);
      nginx.writeConfig(nginxSite('proxy', true, '  server { listen 127.0.0.1:8444; return 204; }\n'));
      const r = await agent(ng, ['renew', '--force']);
      expect(r.code).toBe(1);
      const failed = r.events.find((e) => e.event === 'reload_failed');
      expect(failed?.error).toMatch(
        new RegExp(
          `nginx reloaded but 127\\.0\\.0\\.1:443 still serves serial ${served}, not the new serial ${liveSerial(ng)}`,
        ),
      );
      expect(liveSerial(ng)).not.toBe(served);
      expect(await servedEventually(nginxTarget(), served)).toBe(served);
      expect(nginx.masterPid()).toBe(pid);
      expect(nginx.errorLogTail()).toMatch(/8444 failed \(98: Address already in use\)/);
      const state = JSON.parse(readFileSync(join(ng.stateDir, 'state.json'), 'utf8'));
      expect(state.reload).toMatchObject({ target: 'nginx', ok: false });
    } finally {
      blocker.kill('SIGKILL');
      nginx.writeConfig(nginxSite('proxy', true));
    }
    const again = await agent(ng, ['renew', '--force']);
    expect(again.code, again.stderr).toBe(0);
    expect(await servedEventually(nginxTarget(), liveSerial(ng))).toBe(liveSerial(ng));
  });
});

describe('Traefik container', () => {
  it('takes its first certificate through Traefik on port 80 (proxy mode, dynamic-file router) and serves it on 443', async () => {
    traefik.writeConfig(TRAEFIK_NAMES);
    await traefik.start();
    writeAgentConfig(tr, {
      certificate: { domains: TRAEFIK_NAMES, dir: tr.certDir },
      challenge: { mode: 'proxy' },
      reload: {
        target: 'traefik',
        traefik: { dynamicFile: join(traefik.dynamicDir, 'cert-agent.yml') },
        verify: '127.0.0.1:443',
      },
    });
    const r = await agent(tr, ['renew']);
    expect(r.code, `${r.stderr}\n${traefik.logTail()}`).toBe(0);
    expect(r.stdout).toContain(`traefik serves serial ${liveSerial(tr)}`);
    clientRootFile(tr);
    const seen = await probeTls(topo, 'client', traefikTarget());
    expect(seen).toMatchObject({ ok: true, authorized: true, serial: liveSerial(tr) });
    expect(seen.subjectAltName).toContain('DNS:traefik.test.internal');
  });

  it('keeps serving while its dynamic file is rewritten: a client loop never fails a handshake across several renewals', async () => {
    const pid = traefik.pid();
    const loop = await startTlsLoop(topo, 'client', traefikTarget());
    const serials: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const r = await agent(tr, ['renew', '--force']);
        expect(r.code, `${r.stderr}\n${traefik.logTail()}`).toBe(0);
        serials.push(liveSerial(tr));
      }
    } finally {
      const summary = await loop.stop();
      expect(summary.failures).toEqual([]);
      expect(summary.total).toBeGreaterThan(20);
      for (const s of serials) expect(summary.serials).toContain(s);
    }
    expect(new Set(serials).size).toBe(3);
    expect(traefik.pid()).toBe(pid);
  });
});

describe('the daemon (cert-agent run) in each consumer', () => {
  it('a scheduled renewal makes each proxy serve the new serial, without restarting it', async () => {
    const proxies = [
      { c: ng, target: nginxTarget(), pid: () => nginx.masterPid() },
      { c: tr, target: traefikTarget(), pid: () => traefik.pid() },
    ];
    const daemons: { stop(): Promise<number | null>; lines: () => Record<string, unknown>[] }[] = [];
    try {
      for (const p of proxies) {
        // Due a few seconds from now: `at` is the share of the live certificate's lifetime.
        const cert = new X509Certificate(readFileSync(join(p.c.certDir, 'cert.pem')));
        const nb = new Date(cert.validFrom).getTime();
        const na = new Date(cert.validTo).getTime();
        const at = Math.round(((Date.now() + 5_000 - nb) / (na - nb)) * 1000) / 1000;
        expect(at).toBeGreaterThan(0.1);
        const doc = JSON.parse(readFileSync(p.c.config, 'utf8'));
        writeAgentConfig(p.c, { ...doc, renewal: { at, jitter: 0, check: '* * * * * *' } });
        daemons.push(startDaemon(p.c));
      }
      const before = proxies.map((p) => liveSerial(p.c));
      const pids = proxies.map((p) => p.pid());
      const deadline = Date.now() + 40_000;
      const served = proxies.map(() => '');
      while (Date.now() < deadline && proxies.some((_, i) => !served[i] || served[i] === before[i])) {
        await new Promise((r) => setTimeout(r, 500));
        for (const [i, p] of proxies.entries()) served[i] = (await probeTls(topo, 'client', p.target)).serial ?? '';
      }
      for (const [i, p] of proxies.entries()) {
        expect(served[i], `${p.c.key} still serves ${before[i]}`).not.toBe(before[i]);
        // The proxy may serve the new serial a moment before the daemon's
        // verification returns and logs reload_done: wait for the line.
        const logged = () =>
          daemons[i]!.lines()
            .filter((l) => l.event === 'reload_done')
            .map((l) => l.serial);
        for (const until = Date.now() + 10_000; !logged().includes(served[i]) && Date.now() < until;)
          await new Promise((r) => setTimeout(r, 200));
        expect(logged()).toContain(served[i]);
        expect(p.pid()).toBe(pids[i]);
      }
    } finally {
      for (const d of daemons) expect(await d.stop()).toBe(0);
    }
  }, 60_000);
});

/** `cert-agent run` inside the consumer's namespace; its JSON log lines are collected. */
function startDaemon(c: Consumer) {
  const child = topo.spawn(c.key, [process.execPath, c.bundle, 'run', '--config', c.config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: c.root },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('no shared directory', () => {
  it('each consumer reads only files under its own root', () => {
    for (const [c, other] of [
      [ng, tr],
      [tr, ng],
    ] as const) {
      expect(relative(c.root, other.root).startsWith('..')).toBe(true);
      const walk = (dir: string): void => {
        for (const entry of readdirSync(dir)) {
          const p = join(dir, entry);
          const real = realpathSync(p);
          expect(relative(c.root, real).startsWith('..'), `${p} resolves outside its container`).toBe(false);
          if (lstatSync(p).isDirectory()) walk(p);
        }
      };
      walk(c.root);
      expect(readFileSync(c.config, 'utf8')).not.toContain(other.root);
    }
  });
});
