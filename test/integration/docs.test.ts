/**
 * The commands the README and the migration guide tell operators to run,
 * run as written, so the docs cannot drift from the code. Every ```sh block
 * in those files carries a mark on the line before it:
 *
 *   <!-- test: run -->             in the container: a Debian 13 root
 *                                  filesystem with nginx running, the .deb and
 *                                  the hook in /root, a real step-ca outside
 *   <!-- test: run traefik -->     in a second such container, with Traefik
 *                                  running from the package's traefik.yml and
 *                                  a step-ca of its own
 *   <!-- test: run host -->        outside the container (the CA's side, or
 *                                  another machine): a directory holding the
 *                                  CA's root_ca.crt and root_ca_key
 *   ... expect=fingerprint         its output must be the root's fingerprint
 *   <!-- test: skip (reason) -->   cannot run here, and why
 *
 * A block without a mark, or one that fails, fails the test. The blocks run
 * in document order (README first), each with `sh -e`, after these
 * substitutions for what only exists on a real site: the CA's URL and
 * fingerprint, the names (app.internal, nginx.internal: localhost), nginx's
 * ports 80 and 443 (the port the test CA validates http-01 on, and a free
 * one), the package's file name and the CA's certificate directory.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startStepCa, type StepCa } from '../harness/stepca.js';
import { buildDeb, inChroot, removeTree, unpackRootfs } from '../harness/rootfs.js';
import { traefikBinary } from '../harness/traefik.js';
import { tempDir } from '../helpers/agent.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DOCS = ['README.md', 'docs/migration.md'];
const EXAMPLE_FINGERPRINT = '4a5679c2b7f1e0d8a9b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70819';

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

/** SIGTERM to the process a pid file names, then waits until it is gone (5 s at most). */
function stopByPidFile(file: string): void {
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!(pid > 1)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    spawnSync('sleep', ['0.1']);
  }
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (10 s at most). */
async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((ok) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        ok(true);
      });
      s.on('error', () => ok(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

describe('every sh block of the operator docs is marked', () => {
  it('run, run host, or skip with a reason', () => {
    expect(blocks.length).toBeGreaterThan(10);
    const bad = blocks.filter((b) => !/^(run( host| traefik)?( expect=fingerprint)?|skip \(.{10,}\))$/.test(b.mark));
    expect(bad.map((b) => `${b.file}:${b.line}: ${b.mark || 'no mark'}`)).toEqual([]);
  });
});

describe('the operator docs, run as written', () => {
  let ca: StepCa;
  let root: string;
  let host: string;
  let debName: string;
  let tlsPort: number;
  let nginxStarted = false;
  // The Traefik container: its own root filesystem, step-ca and TLS port.
  let ca2: StepCa;
  let root2: string;
  let tls2: number;
  let traefikPid = 0;

  beforeAll(async () => {
    ca = await startStepCa();
    tlsPort = await freePort();
    const deb = buildDeb();
    debName = basename(deb);
    root = unpackRootfs(['nginx']);
    copyFileSync(deb, join(root, 'root', debName));
    copyFileSync(join(ROOT, 'packaging/postinstall.sh'), join(root, 'root/postinstall.sh'));
    // The container's nginx is running, with Debian's default site (port 80
    // of this machine) left out.
    rmSync(join(root, 'etc/nginx/sites-enabled/default'), { force: true });
    const started = await inChroot(root, ['nginx']);
    expect(started.code, started.stderr).toBe(0);
    nginxStarted = true;
    await startTraefikContainer(deb);
    host = tempDir('cert-agent-docs-host-');
    writeFileSync(join(host, 'root_ca.crt'), ca.rootPem);
    copyFileSync(ca.pki.rootKey, join(host, 'root_ca_key'));
  }, 300_000);

  afterAll(async () => {
    if (traefikPid) process.kill(traefikPid, 'SIGTERM');
    await ca2?.cleanup();
    if (root2) removeTree(root2);
    // By its pid file: `nginx -s stop` would parse a config whose certificate the purge removed.
    if (nginxStarted) stopByPidFile(join(root, 'run/nginx.pid'));
    await ca?.cleanup();
    if (root) removeTree(root);
    if (host) rmSync(host, { recursive: true, force: true });
  }, 60_000);

  /** Debian 13 with the package installed and Traefik running on the shipped static configuration. */
  async function startTraefikContainer(deb: string): Promise<void> {
    ca2 = await startStepCa();
    tls2 = await freePort();
    root2 = unpackRootfs();
    copyFileSync(deb, join(root2, 'root', debName));
    const installed = await inChroot(root2, ['apt-get', 'install', '-y', '-qq', `/root/${debName}`], {
      DEBIAN_FRONTEND: 'noninteractive',
    });
    expect(installed.code, installed.stderr).toBe(0);
    copyFileSync(traefikBinary(), join(root2, 'usr/local/bin/traefik'));
    chmodSync(join(root2, 'usr/local/bin/traefik'), 0o755);
    // Traefik's ports: web where the test CA validates http-01, websecure free.
    const shipped = readFileSync(join(root2, 'usr/share/cert-agent/traefik/traefik.yml'), 'utf8');
    const yml = shipped
      .replace('address: ":80"', `address: "127.0.0.1:${ca2.acmeHttpPort}"`)
      .replace('address: ":443"', `address: "127.0.0.1:${tls2}"`);
    expect(yml).not.toBe(shipped);
    mkdirSync(join(root2, 'etc/traefik/dynamic'), { recursive: true });
    writeFileSync(join(root2, 'etc/traefik/traefik.yml'), yml);
    const start = await inChroot(root2, [
      'sh',
      '-ec',
      'traefik --configFile=/etc/traefik/traefik.yml >/var/log/traefik.log 2>&1 & echo $!',
    ]);
    expect(start.code, start.stderr).toBe(0);
    traefikPid = Number(start.stdout.trim());
    expect(traefikPid).toBeGreaterThan(1);
    await waitForPort(tls2);
  }

  /** What only exists on a real site, replaced by the test environment's own (see the top of this file). */
  const substitute = (code: string, traefik: boolean) => {
    const [c, tls] = traefik ? [ca2, tls2] : [ca, tlsPort];
    return code
      .replaceAll('https://ca.internal:9000', c.url)
      .replaceAll(EXAMPLE_FINGERPRINT, c.rootFingerprint)
      .replaceAll('/mnt/pve/quickOS/lxc-persistent-data/103/ssl/certs', host)
      .replaceAll('cert-agent_0.1.0_all.deb', debName)
      .replace(/\blisten 80;/g, `listen 127.0.0.1:${c.acmeHttpPort};`)
      .replace(/\blisten 443 ssl;/g, `listen 127.0.0.1:${tls} ssl;`)
      .replace(/:443\b/g, `:${tls}`)
      .replace(/\b(app|nginx)\.internal\b/g, 'localhost');
  };

  for (const block of blocks.filter((b) => b.mark.startsWith('run'))) {
    it(`${block.file}:${block.line} (${block.mark})`, async () => {
      const code = substitute(block.code, block.mark.startsWith('run traefik'));
      let r: { code: number; stdout: string; stderr: string };
      if (block.mark.startsWith('run host')) {
        const p = spawnSync('sh', ['-ec', code], { cwd: host, encoding: 'utf8', timeout: 60_000 });
        r = { code: p.status ?? -1, stdout: p.stdout, stderr: p.stderr };
      } else {
        const where = block.mark.startsWith('run traefik') ? root2 : root;
        r = await inChroot(where, ['sh', '-ec', `cd /root\n${code}`], { DEBIAN_FRONTEND: 'noninteractive' });
      }
      expect(r.code, `${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
      if (block.mark.endsWith('expect=fingerprint')) expect(r.stdout.trim()).toBe(ca.rootFingerprint);
    }, 120_000);
  }

  it('the root rotation runbook: step-ca serves the new root, the agent pins both and stays OK', async () => {
    // The runbook's step-ca side against the Traefik container's CA, whose
    // agent is still installed and pinned to the old root only.
    const rotation = blocks.find((b) => b.file === 'docs/migration.md' && b.code.includes('root_ca_2_cross.crt'));
    expect(rotation).toBeDefined();
    const dir = tempDir('cert-agent-docs-rotation-');
    try {
      writeFileSync(join(dir, 'root_ca.crt'), ca2.rootPem);
      copyFileSync(ca2.pki.rootKey, join(dir, 'root_ca_key'));
      const made = spawnSync('sh', ['-ec', rotation!.code], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      expect(made.status, made.stderr).toBe(0);
      const newRoot = made.stdout.trim().split('\n').pop() as string;
      expect(newRoot).toMatch(/^[0-9a-f]{64}$/);
      // ca.json `root` as a list: /roots serves the old root, the new one and the cross-certificate.
      await ca2.serveExtraRoots(
        ['root_ca_2.crt', 'root_ca_2_cross.crt'].map((f) => readFileSync(join(dir, f), 'utf8')),
      );
      // The agent side as the runbook says: pin both fingerprints (enroll
      // proves them against the CA's /roots and rewrites trust.json).
      const trustFile = join(root2, 'var/lib/cert-agent/trust.json');
      const fingerprints = () =>
        (JSON.parse(readFileSync(trustFile, 'utf8')) as { roots: { fingerprint: string }[] }).roots.map(
          (r) => r.fingerprint,
        );
      expect(fingerprints()).not.toContain(newRoot);
      const pin = await inChroot(root2, ['cert-agent', 'enroll', '--fingerprint', `${ca2.rootFingerprint},${newRoot}`]);
      expect(pin.code, pin.stdout + pin.stderr).toBe(0);
      expect(fingerprints()).toEqual(expect.arrayContaining([ca2.rootFingerprint, newRoot]));
      const status = await inChroot(root2, ['cert-agent', 'status']);
      expect(status.code, status.stdout).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
