/**
 * Install and uninstall in a real Debian 13 root filesystem (debootstrap,
 * cached), driven with chroot. The hook refuses, before installing anything,
 * a container that cannot run the agent (Node.js too old for the package, no
 * mount namespace for the unit's sandbox, a challenge prerequisite missing)
 * with exit 78 and one line naming the fix. `apt purge` and the hook's
 * uninstall path leave nothing of the agent: every file of the root
 * filesystem is compared before install and after uninstall, and only apt's
 * and dpkg's own bookkeeping may differ; the certificates stay only when
 * CERT_AGENT_KEEP_CERTS=1 asks for them.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { buildDeb, inChroot, removeTree, unpackRootfs, type ChrootResult } from '../harness/rootfs.js';

const ROOT = resolve(import.meta.dirname, '../..');
let ca: StepCa;
let root: string;
let debName: string;
const at = (p: string) => join(root, p);

/** Serves http-01 tokens from the root filesystem's webroot, as nginx would (the CA validates on this port). */
function serveWebroot(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const token = /^\/\.well-known\/acme-challenge\/([\w-]+)$/.exec(req.url ?? '')?.[1];
    const dir = at('var/www/acme-challenge');
    const file = token && [join(dir, '.well-known/acme-challenge', token), join(dir, token)].find((f) => existsSync(f));
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(port, '127.0.0.1', () => ok(server)));
}

beforeAll(async () => {
  ca = await startStepCa();
  const deb = buildDeb();
  debName = basename(deb);
  root = unpackRootfs();
  copyFileSync(deb, at(`root/${debName}`));
  copyFileSync(join(ROOT, 'packaging/postinstall.sh'), at('root/postinstall.sh'));
  copyFileSync(join(ROOT, 'bundle/out/cert-agent.cjs'), at('root/cert-agent.cjs'));
  copyFileSync(join(ROOT, 'packaging/cert-agent.service'), at('root/cert-agent.service'));
  for (const u of ['cert-agent-pass.service', 'cert-agent.timer']) {
    if (existsSync(join(ROOT, 'packaging', u))) copyFileSync(join(ROOT, 'packaging', u), at(`root/${u}`));
  }
  // What the ca-certificates package creates; trust.installSystem writes there.
  mkdirSync(at('usr/local/share/ca-certificates'), { recursive: true });
}, 300_000);

afterAll(async () => {
  await ca?.cleanup();
  if (root) removeTree(root);
});

function hookEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    CERT_AGENT_CA_URL: ca.url,
    CERT_AGENT_FINGERPRINT: ca.rootFingerprint,
    CERT_AGENT_DOMAINS: 'localhost',
    CERT_AGENT_LISTEN: `127.0.0.1:${ca.acmeHttpPort}`,
    CERT_AGENT_DEB: `/root/${debName}`,
    ...extra,
  };
}

/**
 * Every path of the root filesystem: type, mode, owner, and for files the size
 * and content hash, for links the target. /proc and /dev are mount points of
 * the chroot runs (empty here).
 */
function listing(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const st = lstatSync(at(rel));
    const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) out.set(rel, `link ${readlinkSync(at(rel))}`);
    else if (st.isDirectory()) {
      out.set(rel, `dir ${meta}`);
      for (const e of readdirSync(at(rel))) walk(join(rel, e));
    } else {
      const sum = st.isFile()
        ? createHash('sha256')
            .update(readFileSync(at(rel)))
            .digest('hex')
        : 'special';
      out.set(rel, `file ${meta} ${st.size} ${sum}`);
    }
  };
  for (const e of readdirSync(root)) if (e !== 'proc' && e !== 'dev') walk(e);
  return out;
}

/** apt's and dpkg's own records, which an install and a purge legitimately change. */
const BOOKKEEPING = [
  /^var\/lib\/dpkg\/(status|status-old|available|diversions|lock.*|triggers(\/.*)?|info(\/format)?)$/,
  /^var\/lib\/dpkg\/(updates|info)\/.*$/,
  /^var\/log\/(dpkg\.log|alternatives\.log|apt(\/.*)?)$/,
  /^var\/cache\/(apt|debconf|ldconfig)(\/.*)?$/,
  /^var\/lib\/apt(\/.*)?$/,
  /^var\/lib\/systemd\/deb-systemd-helper-(enabled|masked)(\/.*)?$/,
  /^etc\/ld\.so\.cache$/,
];

/** Paths that differ between two listings, apt/dpkg bookkeeping left out. */
function differences(before: Map<string, string>, after: Map<string, string>): string[] {
  const paths = new Set([...before.keys(), ...after.keys()]);
  return [...paths]
    .filter((p) => before.get(p) !== after.get(p) && !BOOKKEEPING.some((re) => re.test(p)))
    .map((p) => `${p}: ${before.get(p) ?? 'absent'} -> ${after.get(p) ?? 'absent'}`)
    .sort();
}

/**
 * Like inChroot, but "/" is a mount point inside (as in a container, not an
 * image build) and, with `dropSysAdmin`, the hook runs without CAP_SYS_ADMIN:
 * the kernel then refuses a new mount namespace, as it refuses systemd in a
 * container without `nesting`.
 */
function inContainerRoot(argv: string[], env: Record<string, string>, dropSysAdmin: boolean): Promise<ChrootResult> {
  const setup =
    'set -e; mount --bind "$R" "$R"; mount -t proc proc "$R/proc"; mount --rbind /dev "$R/dev"; ' +
    'exec chroot "$R" /usr/bin/env -i "$@"';
  const drop = dropSysAdmin ? ['setpriv', '--bounding-set', '-sys_admin', '--inh-caps', '-sys_admin'] : [];
  const vars = Object.entries({
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    ...env,
  }).map(([k, v]) => `${k}=${v}`);
  return new Promise((ok) => {
    const child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', setup, 'sh', ...vars, ...drop, ...argv],
      {
        env: { R: root, PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => ok({ code: code ?? -1, stdout, stderr }));
  });
}

/** One refusal: exit 78, one line on stderr naming what is wrong and the fix, nothing installed. */
function expectRefused(r: ChrootResult, before: Map<string, string>, ...words: string[]): void {
  expect(r.code, r.stdout + r.stderr).toBe(78);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^postinstall: [^\n]+; nothing was installed\n$/);
  for (const w of words) expect(r.stderr).toContain(w);
  expect(differences(before, listing())).toEqual([]);
}

describe('the hook refuses a container that cannot run the agent: exit 78, the fix named, nothing installed', () => {
  it('nodejs older than 20 for the package (as on Debian 12): use the single executable', async () => {
    const before = listing();
    const status = readFileSync(at('var/lib/dpkg/status'), 'utf8');
    // Debian 12's nodejs as dpkg records it there.
    const old = status.replace(/(Package: nodejs\n(?:[^\n]+\n)*?Version: )[^\n]+/, '$118.19.0+dfsg-6~deb12u2');
    expect(old).not.toBe(status);
    writeFileSync(at('var/lib/dpkg/status'), old);
    try {
      const r = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv());
      expectRefused(r, before, 'nodejs 18.19.0+dfsg-6~deb12u2 is too old for the .deb', 'CERT_AGENT_BUNDLE');
    } finally {
      writeFileSync(at('var/lib/dpkg/status'), status);
    }
  });

  it('the JavaScript bundle without a Node.js >= 20: use the single executable', async () => {
    // As on Debian 12, whose nodejs (18) is too old: no usable `node` at all.
    await inChroot(root, ['mv', '/usr/bin/node', '/usr/bin/node.hidden']);
    try {
      const before = listing();
      const env = hookEnv({ CERT_AGENT_DEB: '', CERT_AGENT_BUNDLE: '/root/cert-agent.cjs' });
      const r = await inChroot(root, ['sh', '/root/postinstall.sh'], env);
      expectRefused(r, before, 'needs Node.js 20 or newer', 'single executable');
    } finally {
      await inChroot(root, ['mv', '/usr/bin/node.hidden', '/usr/bin/node']);
    }
  });

  it('no mount namespace for the unit (no `nesting`): names pct set --features nesting=1', async () => {
    const before = listing();
    const r = await inContainerRoot(['sh', '/root/postinstall.sh'], hookEnv(), true);
    expectRefused(r, before, '226/NAMESPACE', 'pct set <ID> --features nesting=1');
    // The same container with the capability passes this check (and installs).
    const ok = await inContainerRoot(['sh', '/root/postinstall.sh'], hookEnv(), false);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const un = await inChroot(root, ['sh', '/root/postinstall.sh', '--uninstall']);
    expect(un.code, un.stdout + un.stderr).toBe(0);
    expect(differences(before, listing())).toEqual([]);
  }, 120_000);

  it('standalone: the port is taken by another server', async () => {
    const before = listing();
    const taken = createTcpServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    const port = (taken.address() as { port: number }).port;
    try {
      const env = hookEnv({ CERT_AGENT_CHALLENGE: 'standalone', CERT_AGENT_LISTEN: `127.0.0.1:${port}` });
      const r = await inChroot(root, ['sh', '/root/postinstall.sh'], env);
      expectRefused(r, before, `port ${port} is already taken`, 'CERT_AGENT_CHALLENGE=webroot');
    } finally {
      taken.close();
    }
  });

  it('webroot with nginx as the proxy, but no nginx', async () => {
    const before = listing();
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv({ CERT_AGENT_RELOAD: 'nginx' }));
    expectRefused(r, before, 'nginx is not installed');
  });

  it('Traefik without /etc/traefik/dynamic', async () => {
    const before = listing();
    const env = hookEnv({ CERT_AGENT_RELOAD: 'traefik', CERT_AGENT_LISTEN: '127.0.0.1:0' });
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], env);
    expectRefused(r, before, '/etc/traefik/dynamic does not exist', 'providers.file.directory');
  });
});

describe('uninstall leaves nothing of the agent', () => {
  it('apt purge after the hook installed the package, trust.installSystem included', async () => {
    const before = listing();
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The agent adds its root to the system store (update-ca-certificates is
    // not in this root filesystem; the file is written first).
    const conf = readFileSync(at('etc/cert-agent/config.yaml'), 'utf8');
    writeFileSync(at('etc/cert-agent/config.yaml'), `${conf}trust:\n  installSystem: true\n`, { mode: 0o600 });
    const renew = await inChroot(root, ['cert-agent', 'renew', '--force']);
    expect(renew.code, renew.stdout + renew.stderr).toBe(0);
    const crt = readdirSync(at('usr/local/share/ca-certificates'));
    expect(crt).toEqual([`cert-agent-${ca.rootFingerprint.slice(0, 16)}.crt`]);
    expect(differences(before, listing()).length).toBeGreaterThan(10);

    const purge = await inChroot(root, ['apt-get', 'purge', '-y', '-qq', 'cert-agent'], {
      DEBIAN_FRONTEND: 'noninteractive',
    });
    expect(purge.code, purge.stdout + purge.stderr).toBe(0);
    expect(differences(before, listing())).toEqual([]);
  }, 120_000);

  it('several certificates: apt purge removes each certificate directory and each Traefik file the agent wrote', async () => {
    // Traefik's directory and a file of the operator's exist before the agent: they stay.
    mkdirSync(at('etc/traefik/dynamic'), { recursive: true, mode: 0o755 });
    writeFileSync(at('etc/traefik/dynamic/routers.yml'), 'http: {}\n');
    const before = listing();
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const second = ['enroll', '--name', 'second', '--domain', 'localhost', '--listen', `127.0.0.1:${ca.acmeHttpPort}`];
    const third = [...second.slice(0, 2), 'third', ...second.slice(3), '--cert-dir', '/srv/third'];
    for (const argv of [second, third]) {
      const e = await inChroot(root, ['cert-agent', ...argv]);
      expect(e.code, e.stdout + e.stderr).toBe(0);
    }
    const renew = await inChroot(root, ['cert-agent', 'renew']);
    expect(renew.code, renew.stdout + renew.stderr).toBe(0);
    for (const f of ['etc/cert-agent/tls', 'etc/cert-agent/certs/second', 'srv/third'])
      expect(existsSync(at(`${f}/fullchain.pem`)), f).toBe(true);
    // What the Traefik target writes for a named certificate, beside the shared file.
    for (const name of ['cert-agent.yml', 'cert-agent-second.yml'])
      writeFileSync(
        at(`etc/traefik/dynamic/${name}`),
        '# Managed by cert-agent: rewritten after every certificate install. Do not edit.\n',
      );

    const purge = await inChroot(root, ['apt-get', 'purge', '-y', '-qq', 'cert-agent'], {
      DEBIAN_FRONTEND: 'noninteractive',
    });
    expect(purge.code, purge.stdout + purge.stderr).toBe(0);
    expect(differences(before, listing())).toEqual([]);
    rmSync(at('etc/traefik'), { recursive: true, force: true });
  }, 120_000);

  it('the single-executable route (webroot, custom certificate directory): postinstall.sh --uninstall', async () => {
    const before = listing();
    const env = hookEnv({
      CERT_AGENT_DEB: '',
      CERT_AGENT_BUNDLE: '/root/cert-agent.cjs',
      CERT_AGENT_CHALLENGE: 'webroot',
      CERT_AGENT_CERT_DIR: '/srv/tls',
    });
    delete (env as Record<string, string | undefined>).CERT_AGENT_LISTEN;
    const web = await serveWebroot(ca.acmeHttpPort);
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], env).finally(() => web.close());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('postinstall: created /var/www/acme-challenge');
    expect(existsSync(at('srv/tls/fullchain.pem'))).toBe(true);
    expect(existsSync(at('etc/systemd/system/cert-agent.service.d/paths.conf'))).toBe(true);

    const un = await inChroot(root, ['sh', '/root/postinstall.sh', '--uninstall']);
    expect(un.code, un.stdout + un.stderr).toBe(0);
    expect(un.stdout).toContain('postinstall: removed cert-agent');
    expect(differences(before, listing())).toEqual([]);
  }, 120_000);

  it('CERT_AGENT_KEEP_CERTS=1 through the package: only the certificate directory stays', async () => {
    const before = listing();
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const cert = readFileSync(at('etc/cert-agent/tls/fullchain.pem'), 'utf8');

    const un = await inChroot(root, ['sh', '/root/postinstall.sh'], {
      CERT_AGENT_UNINSTALL: '1',
      CERT_AGENT_KEEP_CERTS: '1',
    });
    expect(un.code, un.stdout + un.stderr).toBe(0);
    expect(un.stdout).toContain('postinstall: purging the cert-agent package');
    expect(un.stdout).toContain('kept the certificate directory');
    expect((await inChroot(root, ['dpkg-query', '-W', 'cert-agent'])).code).not.toBe(0);
    expect(readFileSync(at('etc/cert-agent/tls/fullchain.pem'), 'utf8')).toBe(cert);
    const left = differences(before, listing()).map((d) => d.slice(0, d.indexOf(':')));
    expect(left.filter((p) => !p.startsWith('etc/cert-agent/tls/')).sort()).toEqual([
      'etc/cert-agent',
      'etc/cert-agent/tls',
    ]);
    expect(left).toContain('etc/cert-agent/tls/fullchain.pem');
  }, 120_000);

  it('refuses an unknown argument and a bad CERT_AGENT_KEEP_CERTS with 64', async () => {
    const bad = await inChroot(root, ['sh', '/root/postinstall.sh', '--remove']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('unknown argument --remove');
    const keep = await inChroot(root, ['sh', '/root/postinstall.sh', '--uninstall'], { CERT_AGENT_KEEP_CERTS: 'yes' });
    expect(keep.code).toBe(64);
    expect(keep.stderr).toContain('CERT_AGENT_KEEP_CERTS=yes: must be 1');
  });
});
