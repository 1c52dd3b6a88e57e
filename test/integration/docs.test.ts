/**
 * The commands the README and the migration guide tell operators to run,
 * run as written and where they say, so the docs cannot drift from the code.
 * Every ```sh block in those files carries a mark on the line before it:
 *
 *   <!-- test: run in ID -->       inside container ID (101, 102 or 103 below)
 *                                  as root, in /root, with a clean environment
 *   <!-- test: run pct -->         on the Proxmox host as root, with dash as sh;
 *                                  `pct` is test/harness/pct, the stand-in for
 *                                  Proxmox's (nsenter instead of lxc-attach)
 *   <!-- test: run host -->        on another machine on the containers'
 *                                  network, in a directory holding the CA's
 *                                  root_ca.crt and root_ca_key
 *   ... expect=fingerprint         its output must be the CA root's fingerprint
 *   <!-- test: skip (reason) -->   cannot run here, and why
 *
 * A block without a mark, or one that fails, fails the test. The blocks run
 * in document order (README first), each with `sh -e`, against one site
 * booted once: three Debian 13 containers with systemd as PID 1
 * (systemd-nspawn), each in a network namespace of its own on 10.213.8.0/24,
 * with an /etc/hosts that names all of them, nothing mounted between them:
 *   101 web    Debian's nginx, running; the names app.internal,
 *              www.app.internal and nginx.internal (the docs' nginx
 *              container) and web.internal, www.web.internal (the fleet
 *              block's), for which nginx already has a port-80 server with
 *              the proxy-mode snippet, as that block's CERT_AGENT_CHALLENGE=proxy
 *              needs
 *   102 proxy  Traefik, running as root on the package's traefik.yml; the
 *              package installed (the README's Install done here as well);
 *              the user traefik the fleet block names; proxy.internal, and
 *              grafana.internal for the README's second Traefik certificate
 *   103 ca     step-ca as a systemd service (user step), laid out in
 *              /etc/step-ca as `step ca init` leaves it; ca.internal:9000
 * The Proxmox host is this machine; a scratch directory stands for its root
 * home, holding what the docs copy there (the .deb, postinstall.sh,
 * cert-agent-fleet, cert-agent-cluster.sh, cert-agent-ca-hook). Later blocks meet what earlier ones
 * left, as an operator following the docs would: the Proxmox and migration
 * blocks run the hook again in 101, where the README's steps installed the
 * agent by hand, and the fleet installs 102 again after the README's purge
 * there. The only substitutions:
 *   - the example fingerprint: the test CA root's;
 *   - cert-agent_0.2.0_all.deb: the file name of the package built here;
 *   - in 102, app.internal: proxy.internal (a name resolves to one container,
 *     and the README's nginx and Traefik sections both call theirs app.internal);
 *   - on the Proxmox host, /usr/local/sbin, /var/lib/vz, /etc/pve and
 *     /etc/cert-agent-fleet: the same paths under the scratch directory (the
 *     host scripts find their state, log and env files there through their
 *     CERT_AGENT_FLEET_* variables, the stand-in its `local` storage through
 *     PCT_SHIM_STORAGE; /etc/pve, the cluster file system, is a plain
 *     directory, and there is no `pvesh`: a host on its own);
 *   - on the other machine, the Proxmox host's mount of the CA's certs
 *     (/mnt/pve/…/103/ssl/certs): the directory holding the CA's files.
 * What an exit code cannot show is checked after the block: the timer it
 * enabled is active; `status --line` of several certificates prints one v2
 * line for each, its name last; the hookscript `pct set` attached runs as
 * Proxmox runs it once the CA container has started. Last, the prose steps
 * of the root rotation runbook, after its block.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopology, type Topology } from '../harness/netns.js';
import { bootContainer, type Container } from '../harness/nspawn.js';
import { fingerprintOf, makePki, type Pki } from '../harness/pki.js';
import { buildDeb, FLEET_PACKAGES, removeTree, unpackRootfs } from '../harness/rootfs.js';
import { addStepCa, addTraefik, disableNginx, hostsFile, putFile } from '../harness/services.js';
import { tempDir } from '../helpers/agent.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DOCS = ['README.md', 'docs/migration.md'];
const EXAMPLE_FINGERPRINT = '4a5679c2b7f1e0d8a9b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70819';
const SUBNET = '10.213.8';
const MARK = /^(run (in (101|102|103)|pct|host)( expect=fingerprint)?|skip \(.{10,}\))$/;

interface Block {
  file: string;
  line: number;
  mark: string;
  code: string;
}

/** Every ```sh block of a Markdown file with the mark on the line before it ('' when none). */
function shBlocks(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```sh\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const indent = (open[1] as string).length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j] as string); j++)
      body.push((lines[j] as string).slice(indent));
    const before = (lines[i - 1] ?? '').trim();
    const mark = /^<!-- test: (.+) -->$/.exec(before)?.[1] ?? '';
    blocks.push({ file, line: i + 1, mark, code: `${body.join('\n')}\n` });
    i = j;
  }
  return blocks;
}

const blocks = DOCS.flatMap(shBlocks);

describe('every sh block of the operator docs is marked', () => {
  it('run in ID, run pct, run host, or skip with a reason', () => {
    expect(blocks.length).toBeGreaterThan(10);
    const bad = blocks.filter((b) => !MARK.test(b.mark));
    expect(bad.map((b) => `${b.file}:${b.line}: ${b.mark || 'no mark'}`)).toEqual([]);
  });
});

type Where = 101 | 102 | 103 | 'pct' | 'host';

interface Ct {
  id: 101 | 102 | 103;
  hostname: string;
  octet: number;
  names: string[];
  root: string;
  ct?: Container;
}
const cts: Ct[] = [
  {
    id: 101,
    hostname: 'web',
    octet: 1,
    names: ['app.internal', 'www.app.internal', 'nginx.internal', 'web.internal', 'www.web.internal'],
    root: '',
  },
  { id: 102, hostname: 'proxy', octet: 2, names: ['proxy.internal', 'grafana.internal'], root: '' },
  { id: 103, hostname: 'ca', octet: 3, names: ['ca.internal'], root: '' },
];
const byId = (id: number): Ct => cts.find((c) => c.id === id) as Ct;
function container(id: number): Container {
  const c = byId(id).ct;
  if (!c) throw new Error(`container ${id} is not running`);
  return c;
}

/** The fleet block's names for 101 in proxy mode: nginx forwards their challenge path to the agent. */
const FLEET_SITE = `server {
    listen 80;
    server_name web.internal www.web.internal;
    include snippets/cert-agent-challenge-proxy.conf;
    location / { return 301 https://$host$request_uri; }
}
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs argv on this machine (the Proxmox host) and collects its output; never blocks the event loop. */
function runHere(argv: string[], cwd: string, env: Record<string, string>, timeoutMs: number): Promise<Run> {
  return new Promise((done) => {
    const p = spawn(argv[0] as string, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}

describe('the operator docs, run as written', () => {
  let topo: Topology;
  let work: string;
  let pki: Pki;
  let fingerprint: string;
  let debName: string;
  /** The other machine's directory with the CA's files. */
  let caFiles: string;
  /** The Proxmox host's file system: pve/root is root's home there, where the host blocks run. */
  let pve: string;

  const pveEnv = (): Record<string, string> => ({
    PATH: `${pve}/usr/local/sbin:${join(ROOT, 'test/harness')}:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: join(pve, 'root'),
    LANG: 'C.UTF-8',
    PCT_SHIM_DIR: join(work, 'pct'),
    PCT_SHIM_STORAGE: join(pve, 'var/lib/vz'),
    CERT_AGENT_FLEET_CONF: join(pve, 'etc/cert-agent-fleet'),
    CERT_AGENT_FLEET_PVE: join(pve, 'etc/pve'),
    CERT_AGENT_FLEET_STATE: join(pve, 'var/lib/cert-agent-fleet'),
    CERT_AGENT_FLEET_LOG: join(pve, 'var/log/cert-agent-fleet.log'),
    CERT_AGENT_FLEET_SYSLOG: '0',
  });

  /** The stand-in's view of a container: its name and the host PID of its init (empty: stopped). */
  const shimConf = (c: Ct) =>
    writeFileSync(join(work, 'pct', `${c.id}.conf`), `name=${c.hostname}\npid=${c.ct?.leader ?? ''}\n`);

  async function caAnswers(): Promise<boolean> {
    const r = await topo.exec(
      'client',
      ['curl', '-sk', '--max-time', '1', '-o', '/dev/null', '-w', '%{http_code}', 'https://ca.internal:9000/health'],
      { timeoutMs: 5_000 },
    );
    return r.stdout.trim() === '200';
  }
  async function waitForCa(): Promise<void> {
    for (let i = 0; !(await caAnswers()); i++) {
      if (i > 300) throw new Error('step-ca in 103 does not answer on ca.internal:9000');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  beforeAll(async () => {
    work = tempDir('cert-agent-docs-');
    pki = await makePki(join(work, 'pki'), 'docs');
    fingerprint = fingerprintOf(pki.rootPem);
    const deb = buildDeb();
    debName = basename(deb);
    caFiles = join(work, 'ca-files');
    mkdirSync(caFiles);
    copyFileSync(pki.rootCrt, join(caFiles, 'root_ca.crt'));
    copyFileSync(pki.rootKey, join(caFiles, 'root_ca_key'));
    // The Proxmox host: what the docs copy there, and the directories it has.
    pve = join(work, 'pve');
    for (const d of ['root', 'usr/local/sbin', 'var/lib/vz/snippets', 'etc/pve'])
      mkdirSync(join(pve, d), { recursive: true });
    writeFileSync(join(pve, 'etc/pve/.members'), '{}\n'); // pmxcfs always has it
    mkdirSync(join(work, 'pct'));
    copyFileSync(deb, join(pve, 'root', debName));
    for (const f of [
      'postinstall.sh',
      'proxmox/cert-agent-fleet',
      'proxmox/cert-agent-cluster.sh',
      'proxmox/cert-agent-ca-hook',
    ]) {
      const to = join(pve, 'root', basename(f));
      copyFileSync(join(ROOT, 'packaging', f), to);
      chmodSync(to, 0o755);
    }

    topo = createTopology(
      [...cts.map((c) => ({ key: c.hostname, octet: c.octet, names: c.names })), { key: 'client', octet: 9 }],
      SUBNET,
    );
    const site = cts.map((c) => ({ address: `${SUBNET}.${c.octet}`, names: c.names, hostname: c.hostname }));
    for (const c of cts) {
      c.root = unpackRootfs(FLEET_PACKAGES);
      putFile(c.root, 'etc/hostname', `${c.hostname}\n`);
      putFile(c.root, 'etc/hosts', hostsFile(c.hostname, site));
      if (c.id !== 101) disableNginx(c.root);
    }
    const web = byId(101).root;
    putFile(
      web,
      'etc/nginx/snippets/cert-agent-challenge-proxy.conf',
      readFileSync(join(ROOT, 'packaging/nginx/cert-agent-challenge-proxy.conf')),
    );
    putFile(web, 'etc/nginx/sites-available/web.conf', FLEET_SITE);
    symlinkSync('/etc/nginx/sites-available/web.conf', join(web, 'etc/nginx/sites-enabled/web.conf'));
    await addTraefik(byId(102).root, 'root');
    await addStepCa(byId(103).root, pki, { dnsNames: ['ca.internal'] });
    await Promise.all(
      cts.map(async (c) => {
        c.ct = await bootContainer(c.root, 90_000, {
          machine: `docs-${c.hostname}-${process.pid}`,
          hostname: c.hostname,
          netnsPath: `/run/netns/${topo.host(c.hostname).ns}`,
        });
        shimConf(c);
      }),
    );
    await waitForCa();
    await topo.waitForPort('proxy', 443);
    // The README's Install, done in the Traefik container too.
    copyFileSync(deb, join(byId(102).root, 'root', debName));
    const installed = await container(102).exec(['apt-get', 'install', '-y', '-qq', `/root/${debName}`], {
      DEBIAN_FRONTEND: 'noninteractive',
    });
    expect(installed.code, installed.stdout + installed.stderr).toBe(0);
  }, 300_000);

  afterAll(async () => {
    for (const c of cts) {
      try {
        await c.ct?.shutdown();
      } catch {
        /* reported by the test that failed */
      }
    }
    await topo?.cleanup();
    for (const c of cts) if (c.root) removeTree(c.root);
    if (work) rmSync(work, { recursive: true, force: true });
  }, 120_000);

  /** What only exists on a real site, replaced by this one's (see the top of this file). */
  function substitute(code: string, where: Where): string {
    let out = code.replaceAll(EXAMPLE_FINGERPRINT, fingerprint).replaceAll('cert-agent_0.2.0_all.deb', debName);
    if (where === 102) out = out.replace(/\bapp\.internal\b/g, 'proxy.internal');
    if (where === 'pct')
      out = out.replace(/(?<![\w./-])\/(usr\/local\/sbin|var\/lib\/vz|etc\/pve|etc\/cert-agent-fleet)\b/g, `${pve}/$1`);
    if (where === 'host') out = out.replaceAll('/mnt/pve/quickOS/lxc-persistent-data/103/ssl/certs', caFiles);
    return out;
  }

  function whereOf(mark: string): Where {
    const m = /^run (in (\d+)|pct|host)/.exec(mark);
    if (!m) throw new Error(`not a run mark: ${mark}`);
    if (m[2]) return Number(m[2]) as 101 | 102 | 103;
    return m[1] as 'pct' | 'host';
  }

  /** The agent's last log lines in every container, for a failure message. */
  async function diagnose(): Promise<string> {
    const parts: string[] = [];
    for (const c of cts) {
      const r = await c.ct?.exec(
        ['sh', '-c', 'journalctl -n 25 -o cat --no-pager -u cert-agent-pass -u cert-agent | cut -c1-300'],
        {},
        15_000,
      );
      parts.push(`--- ${c.id} ${c.hostname}\n${r?.stdout ?? ''}${r?.stderr ?? ''}`);
    }
    return parts.join('\n');
  }

  async function run(code: string, where: Where): Promise<Run> {
    if (where === 'pct') return runHere(['dash', '-ec', code], join(pve, 'root'), pveEnv(), 300_000);
    if (where === 'host')
      return topo.exec('client', ['sh', '-ec', `cd '${caFiles}'\n${code}`], {
        timeoutMs: 60_000,
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: caFiles, LANG: 'C.UTF-8' },
      });
    return container(where).exec(['sh', '-ec', `cd /root\n${code}`], {}, 240_000);
  }

  /** What the block's exit code cannot show. */
  async function afterBlock(block: Block, where: Where): Promise<void> {
    if (typeof where === 'number' && block.code.includes('systemctl enable --now cert-agent.timer')) {
      const r = await container(where).exec(['systemctl', 'is-active', 'cert-agent.timer']);
      expect(r.stdout.trim()).toBe('active');
    }
    if (typeof where === 'number' && block.code.includes('cert-agent status --line')) {
      const r = await container(where).exec(['cert-agent', 'status', '--line']);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.length, r.stdout).toBeGreaterThan(1);
      for (const line of lines) expect(line, r.stdout).toMatch(/^v2\tOK\t(?:[^\t]+\t){5}[a-z0-9][a-z0-9_-]*$/);
      expect(lines.map((l) => l.split('\t')[7])).toEqual(['default', 'grafana']);
    }
    if (where === 'pct' && block.code.includes('--hookscript')) {
      // Proxmox runs the attached script after the container's start, as `SCRIPT VMID post-start`.
      const id = /pct set (\d+) --hookscript/.exec(block.code)?.[1] as string;
      const config = await runHere(['pct', 'config', id], join(pve, 'root'), pveEnv(), 10_000);
      const volume = /^hookscript: local:snippets\/(\S+)$/m.exec(config.stdout)?.[1];
      expect(volume, config.stdout + config.stderr).toBeDefined();
      const script = join(pve, 'var/lib/vz/snippets', volume as string);
      const hook = await runHere([script, id, 'post-start'], join(pve, 'root'), pveEnv(), 120_000);
      expect(hook.stdout, hook.stderr).toContain(`recorded CA root ${fingerprint} (first run`);
      expect(hook.code).toBe(0);
    }
  }

  for (const block of blocks.filter((b) => b.mark.startsWith('run'))) {
    it(`${block.file}:${block.line} (${block.mark})`, async () => {
      const where = whereOf(block.mark);
      const code = substitute(block.code, where);
      const r = await run(code, where);
      if (r.code !== 0) {
        expect.fail(`exit ${r.code}\n${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n${await diagnose()}`);
      }
      if (block.mark.endsWith('expect=fingerprint')) expect(r.stdout.trim()).toBe(fingerprint);
      await afterBlock(block, where);
    }, 300_000);
  }

  it("the root rotation runbook's prose: step-ca serves the new root, an agent pins both and stays OK", async () => {
    // The runbook's block ran above in the CA files' directory and left the new root and its cross-certificate there.
    const rotation = blocks.find((b) => b.file === 'docs/migration.md' && b.code.includes('root_ca_2_cross.crt'));
    expect(rotation?.mark).toMatch(/^run host/);
    const newRoot = fingerprintOf(readFileSync(join(caFiles, 'root_ca_2.crt'), 'utf8'));
    // "in ca.json make root a list … and restart step-ca"
    const ca = byId(103).root;
    for (const f of ['root_ca_2.crt', 'root_ca_2_cross.crt'])
      putFile(ca, `etc/step-ca/certs/${f}`, readFileSync(join(caFiles, f)));
    const caJson = join(ca, 'etc/step-ca/config/ca.json');
    const cfg = JSON.parse(readFileSync(caJson, 'utf8')) as { root: string | string[] };
    cfg.root = ['root_ca.crt', 'root_ca_2.crt', 'root_ca_2_cross.crt'].map((f) => `/etc/step-ca/certs/${f}`);
    writeFileSync(caJson, JSON.stringify(cfg, null, 2));
    await container(103).sh('systemctl restart step-ca.service');
    await waitForCa();
    // "pin both fingerprints first, in each container": enroll proves them against the CA's /roots.
    const trustFile = join(byId(102).root, 'var/lib/cert-agent/trust.json');
    const pinned = () =>
      (JSON.parse(readFileSync(trustFile, 'utf8')) as { roots: { fingerprint: string }[] }).roots.map(
        (r) => r.fingerprint,
      );
    expect(pinned()).not.toContain(newRoot);
    const pin = await container(102).exec(['cert-agent', 'enroll', '--fingerprint', `${fingerprint},${newRoot}`]);
    expect(pin.code, pin.stdout + pin.stderr).toBe(0);
    expect(pinned()).toEqual(expect.arrayContaining([fingerprint, newRoot]));
    const status = await container(102).exec(['cert-agent', 'status']);
    expect(status.code, status.stdout).toBe(0);
  }, 120_000);
});
