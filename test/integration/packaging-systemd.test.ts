/**
 * The Debian package, the template hook and the hardened unit under a real
 * systemd: the debootstrapped trixie (rootfs.ts) booted with systemd-nspawn
 * (nspawn.ts), sharing the host network with the real step-ca. The hook
 * installs, enrolls, starts cert-agent.service and waits for the first
 * certificate; then a second run, reload (SIGHUP), a broken config (exit 78,
 * no restart loop) and stop, all through systemctl inside the container.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { buildDeb, removeTree, unpackRootfs } from '../harness/rootfs.js';
import { bootContainer, mountsUnder, type Container } from '../harness/nspawn.js';

const ROOT = resolve(import.meta.dirname, '../..');
let ca: StepCa;
let root: string;
let ct: Container;
let debName: string;
const at = (p: string) => join(root, p);
const mode = (p: string) => statSync(at(p)).mode & 0o777;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  ca = await startStepCa();
  const deb = buildDeb();
  debName = basename(deb);
  root = unpackRootfs();
  copyFileSync(deb, at(`root/${debName}`));
  copyFileSync(join(ROOT, 'packaging/postinstall.sh'), at('root/postinstall.sh'));
  // systemd enforces IPAddressDeny=/IPAddressAllow= only with libbpf, which
  // minbase lacks (standard images have it: iproute2 depends on libbpf1).
  // The host's copy (iproute2 is in `make deps`) stands in, so the firewall
  // is in force when the agent talks to the CA.
  for (const lib of ['libbpf.so.1', 'libelf.so.1']) {
    const host = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu'].map((d) => join(d, lib)).find(existsSync);
    if (!host) throw new Error(`${lib} missing on the host: apt-get install libbpf1`);
    copyFileSync(realpathSync(host), at(`usr/lib/x86_64-linux-gnu/${lib}`));
  }
  // IP accounting shares the firewall's cgroup BPF programs: counters prove they are attached.
  mkdirSync(at('etc/systemd/system/cert-agent.service.d'), { recursive: true });
  writeFileSync(at('etc/systemd/system/cert-agent.service.d/test-accounting.conf'), '[Service]\nIPAccounting=yes\n');
  ct = await bootContainer(root);
}, 180_000);

afterAll(async () => {
  try {
    await ct?.shutdown();
  } finally {
    await ca?.cleanup();
    if (root) removeTree(root);
  }
}, 60_000);

function hookEnv(): Record<string, string> {
  return {
    CERT_AGENT_CA_URL: ca.url,
    CERT_AGENT_FINGERPRINT: ca.rootFingerprint,
    CERT_AGENT_DOMAINS: 'localhost',
    // step-ca validates http-01 on this port instead of 80 (test CA only).
    CERT_AGENT_LISTEN: `127.0.0.1:${ca.acmeHttpPort}`,
    CERT_AGENT_DEB: `/root/${debName}`,
    CERT_AGENT_WAIT: '90',
    // These tests are about the daemon; timer mode is the hook's default.
    CERT_AGENT_MODE: 'daemon',
  };
}

/** `systemctl show cert-agent` properties as an object. */
async function show(...props: string[]): Promise<Record<string, string>> {
  const out = await ct.sh(`systemctl show cert-agent.service -p ${props.join(',')}`);
  return Object.fromEntries(out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** The unit's JSON log lines from the journal. */
async function events(): Promise<Record<string, unknown>[]> {
  const out = await ct.sh('journalctl -u cert-agent.service -o cat --no-pager');
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${ms} ms\n${await ct.sh('journalctl -u cert-agent.service -n 30 -o cat --no-pager')}`);
    await sleep(500);
  }
}

const count = (evs: Record<string, unknown>[], name: string) => evs.filter((e) => e.event === name).length;
const hashOf = (p: string) => createHash('sha256').update(readFileSync(at(p))).digest('hex');

describe('Debian package, template hook and unit under systemd (systemd-nspawn, trixie)', () => {
  it('the container runs Debian\'s systemd as PID 1 on cgroup v2, on the host network', async () => {
    expect(await ct.sh('cat /proc/1/comm')).toBe('systemd');
    expect(await ct.sh('systemctl --version | head -n 1')).toMatch(/^systemd 25[7-9]|^systemd 2[6-9]\d/);
    expect(await ct.sh('stat -fc %T /sys/fs/cgroup')).toBe('cgroup2fs');
    expect(await ct.sh('systemd-detect-virt')).toBe('systemd-nspawn');
    expect(await ct.sh('readlink /proc/self/ns/net')).toBe(execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).trim());
  });

  it('the hook installs, enrolls, starts the unit and waits for the first certificate', async () => {
    const r = await ct.exec(['sh', '/root/postinstall.sh'], hookEnv(), 150_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('postinstall: installing cert-agent_');
    expect(r.stdout).toContain(`pinned CA root ${ca.rootFingerprint}`);
    expect(r.stdout).toContain('postinstall: started cert-agent.service');
    expect(r.stdout).toContain('cert-agent OK');
    expect(await ct.sh('systemctl is-active cert-agent.service')).toBe('active');
    expect(await ct.sh('systemctl is-enabled cert-agent.service')).toBe('enabled');

    expect(mode('etc/cert-agent/config.yaml')).toBe(0o600);
    expect(mode('etc/cert-agent/tls')).toBe(0o700);
    expect(mode('etc/cert-agent/tls/key.pem')).toBe(0o600);
    expect(mode('var/lib/cert-agent')).toBe(0o700);
    expect(mode('var/lib/cert-agent/account.key')).toBe(0o600);
    const cert = at('etc/cert-agent/tls/cert.pem');
    writeFileSync(at('root/ca-root.pem'), ca.rootPem);
    const verdict = execFileSync('openssl', ['verify', '-CAfile', at('root/ca-root.pem'), '-untrusted', at('etc/cert-agent/tls/chain.pem'), cert], { encoding: 'utf8' });
    expect(verdict.trim()).toBe(`${cert}: OK`);
    expect(execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', cert], { encoding: 'utf8' })).toContain('DNS:localhost');

    // Issued by the daemon under systemd, logged as JSON to the journal.
    const installed = (await until('certificate_installed in the journal', events, (e) => count(e, 'certificate_installed') > 0)).filter((e) => e.event === 'certificate_installed');
    expect(installed).toHaveLength(1);
    expect(installed[0]?.domains).toEqual(['localhost']);
  }, 180_000);

  it('the unit runs with its sandbox in force', async () => {
    const p = await show('NoNewPrivileges', 'CapabilityBoundingSet', 'ProtectSystem', 'PrivateDevices', 'RestrictNamespaces', 'SystemCallFilter', 'MainPID');
    expect(p.NoNewPrivileges).toBe('yes');
    expect(p.CapabilityBoundingSet?.split(' ').sort()).toEqual(['cap_chown', 'cap_dac_override', 'cap_fowner', 'cap_net_bind_service']);
    expect(p.ProtectSystem).toBe('strict');
    expect(p.PrivateDevices).toBe('yes');
    expect(p.RestrictNamespaces).toBe('yes');
    // What the running process actually got, not just what the unit asks for.
    const status = await ct.sh(`cat /proc/${p.MainPID}/status`);
    expect(status).toMatch(/^CapBnd:\s+0*40b$/m); // chown, dac_override, fowner, net_bind_service
    expect(status).toMatch(/^CapEff:\s+0*40b$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    const mounts = (await ct.sh(`cat /proc/${p.MainPID}/mountinfo`)).split('\n').map((l) => l.split(' '));
    const opts = (mp: string) => mounts.filter((f) => f[4] === mp).map((f) => f[5]?.split(',')[0]).pop();
    expect(opts('/')).toBe('ro');
    expect(opts('/etc/cert-agent')).toBe('rw');
    expect(opts('/var/lib/cert-agent')).toBe('rw');
    expect(opts('/tmp')).toBe('rw'); // PrivateTmp
    // PrivateDevices: the container's /dev has a console, the unit's does not.
    expect(await ct.sh('ls /dev')).toMatch(/^console$/m);
    expect(await ct.sh(`ls /proc/${p.MainPID}/root/dev`)).not.toMatch(/^console$/m);
    // The IP firewall is attached and the CA on 127.0.0.1 got through it.
    const ip = await show('IPAddressDeny', 'IPAddressAllow', 'IPEgressBytes', 'IPIngressBytes');
    expect(ip.IPAddressDeny?.split(' ').sort()).toEqual(['0.0.0.0/0', '::/0']);
    expect(ip.IPAddressAllow?.split(' ')).toContain('127.0.0.0/8');
    expect(Number(ip.IPEgressBytes)).toBeGreaterThan(0);
    expect(Number(ip.IPIngressBytes)).toBeGreaterThan(0);
  });

  it('a second run of the hook changes nothing and keeps the same process', async () => {
    const before = await show('MainPID', 'NRestarts');
    const files = ['etc/cert-agent/config.yaml', 'etc/cert-agent/tls/cert.pem', 'etc/cert-agent/tls/key.pem', 'var/lib/cert-agent/account.key'];
    const hashes = files.map(hashOf);
    const r = await ct.exec(['sh', '/root/postinstall.sh'], hookEnv(), 150_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('already installed');
    expect(r.stdout).toContain('unchanged');
    expect(r.stdout).toContain('cert-agent.service already enabled');
    expect(r.stdout).toContain('cert-agent OK');
    expect(files.map(hashOf)).toEqual(hashes);
    expect(await show('MainPID', 'NRestarts')).toEqual(before);
    expect(await ct.sh('systemctl is-active cert-agent.service')).toBe('active');
    expect(count(await events(), 'certificate_installed')).toBe(1);
  }, 180_000);

  it('systemctl reload sends SIGHUP: the daemon re-reads its config in the same process', async () => {
    const { MainPID } = await show('MainPID');
    const seen = count(await events(), 'config_reloaded');
    await ct.sh('systemctl reload cert-agent.service');
    await until('config_reloaded in the journal', events, (e) => count(e, 'config_reloaded') > seen);
    expect((await show('MainPID')).MainPID).toBe(MainPID);
    expect(await ct.sh('systemctl is-active cert-agent.service')).toBe('active');
  });

  it('a broken config: exit 78, the unit fails and is not restarted; fixed, it runs again', async () => {
    const good = await ct.sh('cat /etc/cert-agent/config.yaml');
    await ct.sh('printf "ca: [\\n" > /etc/cert-agent/config.yaml');
    await ct.exec(['systemctl', 'restart', 'cert-agent.service']);
    const failed = await until('unit failed', () => show('ActiveState', 'SubState', 'Result', 'ExecMainStatus', 'NRestarts'), (p) => p.ActiveState === 'failed');
    expect(failed).toEqual({ ActiveState: 'failed', SubState: 'failed', Result: 'exit-code', ExecMainStatus: '78', NRestarts: '0' });
    // RestartSec=10s: a restart would have been scheduled by now (auto-restart), and is not.
    await sleep(11_000);
    expect(await show('ActiveState', 'NRestarts')).toEqual({ ActiveState: 'failed', NRestarts: '0' });
    expect(await ct.sh('journalctl -u cert-agent.service -o cat --no-pager')).toContain('is not valid YAML');

    await ct.sh(`cat > /etc/cert-agent/config.yaml <<'EOF'\n${good}\nEOF`);
    const started = count(await events(), 'daemon_started');
    await ct.sh('systemctl restart cert-agent.service');
    // Type=exec: active once exec'd; daemon_started once its signal handlers are in place.
    await until('daemon_started after the restart', events, (e) => count(e, 'daemon_started') > started);
    expect(await show('ActiveState', 'SubState')).toEqual({ ActiveState: 'active', SubState: 'running' });
    expect(await ct.sh('cert-agent status >/dev/null; echo $?')).toBe('0');
  }, 90_000);

  it('systemctl stop: the agent exits cleanly', async () => {
    await ct.sh('systemctl stop cert-agent.service');
    // ExecMainCode 1: exited (with status 0), not killed by the signal.
    expect(await show('ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus')).toEqual({ ActiveState: 'inactive', Result: 'success', ExecMainCode: '1', ExecMainStatus: '0' });
  });

  it('the container powers off and leaves no mount and no process behind', async () => {
    const leader = ct.leader;
    await ct.shutdown();
    expect(existsSync(`/proc/${leader}`)).toBe(false);
    expect(mountsUnder(root)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(ct.machine);
  });
});
