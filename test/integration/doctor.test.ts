/**
 * `cert-agent doctor` through the bundle against a real step-ca and a real
 * certificate: a clean installation passes; a world-readable key, a
 * certificate directory bind-mounted in (the legacy shared-directory
 * layout), a mismatched key, an nginx that does not use the agent's files,
 * an unreachable or recreated CA each give a PROBLEM line with what to do
 * and exit 1; --fix repairs modes and says what it changed.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, statSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { modeOf, runAgent, tempDir } from '../helpers/agent.js';
import { enrolledWithCertificate } from '../helpers/enrolled.js';
import { newKey } from '../helpers/certs.js';

let ca: StepCa;
let dir: string;
const cfg = () => join(dir, 'config.yaml');
const certDir = () => join(dir, 'tls');
const liveKey = () => join(certDir(), readlinkSync(join(certDir(), 'current')), 'key.pem');

beforeAll(async () => {
  ca = await startStepCa();
  dir = tempDir('cert-agent-doctor-');
  await enrolledWithCertificate(ca, dir);
});
afterAll(async () => {
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function doctor(config = cfg(), extra: string[] = []) {
  const r = await runAgent(['doctor', '--config', config, ...extra]);
  expect(r.stderr).toBe('');
  const lines = r.stdout.trim().split('\n');
  const problems = lines.filter((l) => l.startsWith('PROBLEM '));
  return { ...r, lines, problems };
}

describe('cert-agent doctor', () => {
  it('passes a clean installation: every check ok, exit 0', async () => {
    const r = await doctor();
    expect(r.problems).toEqual([]);
    expect(r.code).toBe(0);
    for (const check of ['config', 'permissions', 'mount', 'CA', 'key', 'chain', 'challenge'])
      expect(r.lines.some((l) => new RegExp(`^ok +${check} `).test(l))).toBe(true);
    expect(r.stdout).toContain(`its TLS chains to the pinned root ${ca.rootFingerprint}`);
    expect(r.lines.at(-1)).toBe('doctor: all good');
  });

  it('--fix waits for the lock: nothing changes while another agent holds it, the fix follows its release', async () => {
    chmodSync(liveKey(), 0o644);
    const lock = join(dir, 'state', 'lock');
    // This test process plays a renewal in flight: a live pid and its start time, as the agent's lock records them.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    writeFileSync(lock, `${process.pid} ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}\n`, { mode: 0o600 });
    try {
      const running = doctor(cfg(), ['--fix']);
      await new Promise((r) => setTimeout(r, 1500));
      expect(modeOf(liveKey()), 'key mode while the lock is held elsewhere').toBe(0o644);
      rmSync(lock);
      const fixed = await running;
      expect(fixed.lines).toContainEqual(expect.stringMatching(/^FIXED +private key .*: mode 0644 -> 0600$/));
      expect(modeOf(liveKey())).toBe(0o600);
    } finally {
      rmSync(lock, { force: true });
      chmodSync(liveKey(), 0o600);
    }
  });

  it('catches a world-readable key and an open certificate directory; --fix repairs the modes and says so', async () => {
    chmodSync(liveKey(), 0o644);
    chmodSync(certDir(), 0o755);
    const r = await doctor();
    expect(r.code).toBe(1);
    expect(r.problems).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^PROBLEM private key +${liveKey()} is readable by group and others \\(mode 0644, want 0600\\): run cert-agent doctor --fix$`,
        ),
      ),
    );
    expect(r.problems).toContainEqual(
      expect.stringMatching(/^PROBLEM certificate directory .* \(mode 0755, want 0700\)/),
    );
    expect(r.lines.at(-1)).toBe('doctor: 2 problem(s)');

    const fixed = await doctor(cfg(), ['--fix']);
    expect(fixed.code).toBe(0);
    expect(fixed.lines).toContainEqual(
      expect.stringMatching(new RegExp(`^FIXED +private key +${liveKey()}: mode 0644 -> 0600$`)),
    );
    expect(fixed.lines).toContainEqual(expect.stringMatching(/^FIXED +certificate directory .*: mode 0755 -> 0700$/));
    expect(fixed.lines.at(-1)).toBe('doctor: all good (2 fixed)');
    expect(modeOf(liveKey())).toBe(0o600);
    expect(modeOf(certDir())).toBe(0o700);
    expect((await doctor()).code).toBe(0);
  });

  it('catches a key owned by someone else; --fix gives it back to the configured owner', async () => {
    chownSync(liveKey(), 65534, 65534);
    const r = await doctor();
    expect(r.code).toBe(1);
    expect(r.problems).toContainEqual(
      `PROBLEM private key                 ${liveKey()} is owned by 65534:65534, want 0:0: run cert-agent doctor --fix`,
    );
    const fixed = await doctor(cfg(), ['--fix']);
    expect(fixed.lines).toContainEqual(`FIXED   private key                 ${liveKey()}: owner 65534:65534 -> 0:0`);
    expect(statSync(liveKey()).uid).toBe(0);
    expect(fixed.code).toBe(0);
  });

  it('catches a certificate directory bind-mounted from outside the container', async () => {
    const host = join(dir, 'hypervisor', 'lxc-persistent-data', '103', 'ssl');
    const mounted = join(dir, 'etc-step-ca-ssl');
    mkdirSync(host, { recursive: true, mode: 0o700 });
    mkdirSync(mounted, { mode: 0o700 });
    const config = join(dir, 'legacy.yaml');
    writeFileSync(config, readFileSync(cfg(), 'utf8').replace(`dir: ${certDir()}`, `dir: ${mounted}`));
    expect(readFileSync(config, 'utf8')).toContain(mounted);
    execFileSync('mount', ['--bind', host, mounted]);
    try {
      const r = await doctor(config);
      expect(r.code).toBe(1);
      expect(r.problems).toContainEqual(
        `PROBLEM mount                       certificate directory ${mounted} is on a bind mount of ${host} (from ${execFileSync('findmnt', ['-no', 'SOURCE', '--target', mounted], { encoding: 'utf8' }).trim().replace(/\[.*$/, '')}) at ${mounted}: keys must stay inside this container; use a local directory and remove the mount point from the container config (the old shared-directory setup)`,
      );
    } finally {
      execFileSync('umount', [mounted]);
    }
    const after = await doctor(config);
    expect(after.problems.filter((l) => /^PROBLEM mount/.test(l))).toEqual([]);
  });

  it('catches a host directory with readable private keys mounted anywhere (the seed setup)', async () => {
    const host = join(dir, 'hypervisor-shared', 'lxc-persistent-data', '103', 'ssl');
    const mounted = join(dir, 'etc-traefik-certs');
    mkdirSync(join(host, 'secrets'), { recursive: true });
    mkdirSync(mounted);
    writeFileSync(join(host, 'secrets', 'intermediate_ca_key'), 'k', { mode: 0o644 });
    writeFileSync(join(host, 'key.pem'), 'k', { mode: 0o644 });
    writeFileSync(join(host, 'cert.pem'), 'c', { mode: 0o644 });
    execFileSync('mount', ['--bind', host, mounted]);
    try {
      const r = await doctor(cfg());
      expect(r.code).toBe(1);
      const line = r.problems.find((l) => l.includes(`${mounted} is a mount of ${host}`));
      expect(line, r.problems.join('\n')).toMatch(/^PROBLEM mount /);
      expect(line).toContain('private keys anyone can read (key.pem, secrets/intermediate_ca_key)');
      expect(line).toContain(`pct set <ID> -delete mpN\` (the mpN whose mp=${mounted}`);
    } finally {
      execFileSync('umount', [mounted]);
    }
    const after = await doctor(cfg());
    expect(after.problems.filter((l) => l.includes(mounted))).toEqual([]);
  });

  it('catches nginx not using the agent files, and accepts it when it does', async () => {
    const conf = join(dir, 'nginx.conf');
    const server = (crt: string, key: string) =>
      `pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log; events {} http { access_log off; server { listen 127.0.0.1:1; ssl_certificate ${crt}; ssl_certificate_key ${key}; } }\n`;
    const legacy = join(dir, 'legacy-ssl');
    mkdirSync(legacy);
    for (const f of ['fullchain.pem', 'key.pem']) writeFileSync(join(legacy, f), readFileSync(join(certDir(), f)));
    writeFileSync(conf, server(join(legacy, 'fullchain.pem'), join(legacy, 'key.pem')));
    const config = join(dir, 'nginx.yaml');
    writeFileSync(
      config,
      `${readFileSync(cfg(), 'utf8')}\nreload: { target: nginx, nginx: { config: ${conf} } }\n`.replace(
        /^reload:.*\n(?=.*\nreload:)/m,
        '',
      ),
    );
    const r = await doctor(config);
    expect(r.problems).toContainEqual(
      `PROBLEM proxy config                nginx does not use the agent's files: set ssl_certificate ${certDir()}/fullchain.pem; and ssl_certificate_key ${certDir()}/key.pem; (it uses ${legacy}/fullchain.pem, ${legacy}/key.pem)`,
    );
    writeFileSync(conf, server(join(certDir(), 'fullchain.pem'), join(certDir(), 'key.pem')));
    const ok = await doctor(config);
    expect(ok.lines).toContainEqual(
      `ok      proxy config                nginx uses ${certDir()}/fullchain.pem, ${certDir()}/key.pem`,
    );
  });

  it('catches a key that does not belong to the certificate', async () => {
    const original = readFileSync(liveKey(), 'utf8');
    rmSync(liveKey());
    writeFileSync(liveKey(), (await newKey()).pem, { mode: 0o600 });
    try {
      const r = await doctor();
      expect(r.code).toBe(1);
      expect(r.problems).toContainEqual(
        expect.stringMatching(
          /^PROBLEM key +certificate [0-9a-f]+ does not match the private key: run cert-agent renew --force to install a new matching set$/,
        ),
      );
    } finally {
      rmSync(liveKey());
      writeFileSync(liveKey(), original, { mode: 0o600 });
    }
  });

  it('reports a recreated CA with its new root, and an unreachable one', async () => {
    const oldFp = ca.rootFingerprint;
    await ca.recreate();
    const r = await doctor();
    expect(r.code).toBe(1);
    const line = r.problems.find((l) => l.startsWith('PROBLEM CA'));
    expect(line).toContain('does not verify against the pinned CA root');
    expect(line).toContain(`the CA offers root ${ca.rootFingerprint}`);
    expect(line).toContain('cert-agent enroll --fingerprint <new fingerprint>');
    expect(ca.rootFingerprint).not.toBe(oldFp);
    await ca.stop();
    const down = await doctor();
    expect(down.problems.find((l) => l.startsWith('PROBLEM CA'))).toMatch(/cannot reach .*: check that step-ca runs/);
  });
});
