/**
 * The Debian package, the template hook and the hardened unit under a real
 * systemd: the debootstrapped trixie (rootfs.ts) booted with systemd-nspawn
 * (nspawn.ts), sharing the host network with the real step-ca. The hook
 * installs, enrolls, starts cert-agent.service and waits for the first
 * certificate; then a second run, reload (SIGHUP), a broken config (exit 78,
 * no restart loop) and stop, all through systemctl inside the container.
 * Then a second container with Debian's nginx: the hook installs with a
 * non-root certificate.owner and challenge mode webroot, and the unit (its
 * UMask=0077 and system call filter in force) issues through nginx, whose
 * workers run as www-data. Between the two, renewals after the first
 * certificate go over step-ca's renewal API (/1.0/rekey) under each unit:
 * the daemon's, and timer mode's one check.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { buildDeb, removeTree, unpackRootfs } from '../harness/rootfs.js';
import { bootContainer, mountsUnder, type Container } from '../harness/nspawn.js';
import { countEvents, prepareRoot, unitEvents, unitProps, untilUnit } from '../helpers/systemd-unit.js';

const ROOT = resolve(import.meta.dirname, '../..');
let ca: StepCa;
let root: string;
let ct: Container;
let debPath: string;
let debName: string;
const at = (p: string) => join(root, p);
const mode = (p: string) => statSync(at(p)).mode & 0o777;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  // Ten-minute certificates (eleven with step-ca's backdating): nothing is due
  // while the tests run unless renewal.at is lowered, as the renewal test does.
  ca = await startStepCa({ certDuration: '10m' });
  debPath = buildDeb();
  debName = basename(debPath);
  root = unpackRootfs();
  prepareRoot(root, debPath);
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

const show = (...props: string[]) => unitProps(ct, 'cert-agent.service', props);
const events = () => unitEvents(ct, 'cert-agent.service');
const until = <T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms?: number) =>
  untilUnit(ct, 'cert-agent.service', what, probe, ok, ms);
const count = countEvents;
const hashOf = (p: string) =>
  createHash('sha256')
    .update(readFileSync(at(p)))
    .digest('hex');

describe('Debian package, template hook and unit under systemd (systemd-nspawn, trixie)', () => {
  it("the container runs Debian's systemd as PID 1 on cgroup v2, on the host network", async () => {
    expect(await ct.sh('cat /proc/1/comm')).toBe('systemd');
    expect(await ct.sh('systemctl --version | head -n 1')).toMatch(/^systemd 25[7-9]|^systemd 2[6-9]\d/);
    expect(await ct.sh('stat -fc %T /sys/fs/cgroup')).toBe('cgroup2fs');
    expect(await ct.sh('systemd-detect-virt')).toBe('systemd-nspawn');
    expect(await ct.sh('readlink /proc/self/ns/net')).toBe(
      execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).trim(),
    );
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
    const verdict = execFileSync(
      'openssl',
      ['verify', '-CAfile', at('root/ca-root.pem'), '-untrusted', at('etc/cert-agent/tls/chain.pem'), cert],
      { encoding: 'utf8' },
    );
    expect(verdict.trim()).toBe(`${cert}: OK`);
    expect(
      execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', cert], { encoding: 'utf8' }),
    ).toContain('DNS:localhost');

    // Issued by the daemon under systemd, logged as JSON to the journal.
    const installed = (
      await until('certificate_installed in the journal', events, (e) => count(e, 'certificate_installed') > 0)
    ).filter((e) => e.event === 'certificate_installed');
    expect(installed).toHaveLength(1);
    expect(installed[0]?.domains).toEqual(['localhost']);
  }, 180_000);

  it('the unit runs with its sandbox in force', async () => {
    const p = await show(
      'NoNewPrivileges',
      'CapabilityBoundingSet',
      'ProtectSystem',
      'PrivateDevices',
      'RestrictNamespaces',
      'SystemCallFilter',
      'MainPID',
    );
    expect(p.NoNewPrivileges).toBe('yes');
    expect(p.CapabilityBoundingSet?.split(' ').sort()).toEqual([
      'cap_chown',
      'cap_dac_override',
      'cap_fowner',
      'cap_net_bind_service',
    ]);
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
    const opts = (mp: string) =>
      mounts
        .filter((f) => f[4] === mp)
        .map((f) => f[5]?.split(',')[0])
        .pop();
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
    const files = [
      'etc/cert-agent/config.yaml',
      'etc/cert-agent/tls/cert.pem',
      'etc/cert-agent/tls/key.pem',
      'var/lib/cert-agent/account.key',
    ];
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
    const failed = await until(
      'unit failed',
      () => show('ActiveState', 'SubState', 'Result', 'ExecMainStatus', 'NRestarts'),
      (p) => p.ActiveState === 'failed',
    );
    expect(failed).toEqual({
      ActiveState: 'failed',
      SubState: 'failed',
      Result: 'exit-code',
      ExecMainStatus: '78',
      NRestarts: '0',
    });
    // RestartSec=10s: a restart would have been scheduled by now (auto-restart), and is not.
    await sleep(11_000);
    expect(await show('ActiveState', 'NRestarts')).toEqual({ ActiveState: 'failed', NRestarts: '0' });
    expect(await ct.sh('journalctl -u cert-agent.service -o cat --no-pager')).toContain('is not valid YAML');
    // Log levels reach journald as priorities: the failure is in `-p err`, the routine start is not.
    const errors = await ct.sh('journalctl -u cert-agent.service -p err -o cat --no-pager');
    expect(errors).toContain('is not valid YAML');
    expect(errors).not.toContain('daemon_started');
    expect(await ct.sh('journalctl -u cert-agent.service -p info -o cat --no-pager')).toContain('daemon_started');

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
    expect(await show('ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus')).toEqual({
      ActiveState: 'inactive',
      Result: 'success',
      ExecMainCode: '1',
      ExecMainStatus: '0',
    });
  });

  it('renewals after the first certificate go over the CA API: the daemon under its unit, then one check of timer mode', async () => {
    // Due at a tenth of the lifetime: about 6 s after each issuance.
    await ct.sh(`printf 'renewal:\\n  at: 0.1\\n  jitter: 0\\n' >> /etc/cert-agent/config.yaml`);
    const installed = (evs: Record<string, unknown>[]) => evs.filter((e) => e.event === 'certificate_installed');
    const seen = installed(await events()).length;
    // The daemon's first pass finds the certificate due.
    await ct.sh('systemctl start cert-agent.service');
    const byDaemon = installed(
      await until('a renewal by the daemon', events, (e) => installed(e).length > seen, 60_000),
    ).slice(seen);
    expect(byDaemon.map((e) => e.method)).toEqual(['step']);
    await ct.sh('systemctl stop cert-agent.service');

    // Timer mode: the unit the timer starts, once the daemon's certificate is due in turn.
    const cert = new X509Certificate(readFileSync(at('etc/cert-agent/tls/cert.pem')));
    const [from, to] = [Date.parse(cert.validFrom), Date.parse(cert.validTo)];
    while (Date.now() < from + 0.1 * (to - from) + 1_000) await sleep(500);
    await ct.sh('systemctl start cert-agent-pass.service');
    // Its JSON lines (this container ran no other check), once journald has them all.
    const passEvents = async () =>
      (await ct.sh('journalctl -u cert-agent-pass.service -o cat --no-pager'))
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const outcome = ['certificate_installed', 'renewal_not_due', 'renewal_failed', 'check_deferred'];
    const byCheck = await until('the check logged its outcome', passEvents, (e) =>
      e.some((l) => outcome.includes(String(l.event))),
    );
    expect(
      installed(byCheck).map((e) => e.method),
      JSON.stringify(byCheck),
    ).toEqual(['step']);
    expect(new X509Certificate(readFileSync(at('etc/cert-agent/tls/cert.pem'))).serialNumber).not.toBe(
      cert.serialNumber,
    );
    const state = JSON.parse(readFileSync(at('var/lib/cert-agent/state.json'), 'utf8')) as {
      lastRenewal?: { method: string };
    };
    expect(state.lastRenewal?.method).toBe('step');
  }, 120_000);

  it('the container powers off and leaves no mount and no process behind', async () => {
    const leader = ct.leader;
    await ct.shutdown();
    expect(existsSync(`/proc/${leader}`)).toBe(false);
    expect(mountsUnder(root)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(ct.machine);
  });
});

describe('non-root certificate.owner, webroot through nginx (www-data workers), under the shipped unit', () => {
  let root2: string;
  let c2: Container;
  const at2 = (p: string) => join(root2, p);
  const WEBROOT = '/var/www/acme-challenge';
  const TEXTFILE = '/var/lib/prometheus/node-exporter/cert-agent.prom';
  /** argv inside the container as `user` (its own groups only), as Traefik, nginx's workers or node_exporter run. */
  const asUser = (user: string, argv: string[]) =>
    c2.exec([
      'setpriv',
      `--reuid=${user}`,
      `--regid=${user === 'nobody' ? 'nogroup' : user}`,
      '--init-groups',
      ...argv,
    ]);
  const unitLog = () => c2.sh('journalctl -u cert-agent.service -n 20 -o cat --no-pager');
  const journal = async () =>
    (await c2.sh('journalctl -u cert-agent.service -o cat --no-pager'))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    root2 = unpackRootfs(['nginx']);
    prepareRoot(root2, debPath);
    // Debian's nginx (nginx.conf: `user www-data;`), started at boot, serving
    // the shipped snippet on the port the test CA validates http-01 on; no
    // default site, so nothing listens on port 80 of the host.
    rmSync(at2('etc/nginx/sites-enabled/default'), { force: true });
    const snippet = 'cert-agent-challenge-webroot.conf';
    copyFileSync(join(ROOT, 'packaging/nginx', snippet), at2(`etc/nginx/snippets/${snippet}`));
    writeFileSync(
      at2('etc/nginx/conf.d/cert-agent-test.conf'),
      `server {
    listen 127.0.0.1:${ca.acmeHttpPort};
    server_name localhost;
    include snippets/cert-agent-challenge-webroot.conf;
    location / { return 404; }
}
`,
    );
    c2 = await bootContainer(root2);
    await c2.sh('useradd --system --user-group --no-create-home --shell /usr/sbin/nologin traefik');
  }, 600_000);

  afterAll(async () => {
    try {
      await c2?.shutdown();
    } finally {
      if (root2) removeTree(root2);
    }
  }, 60_000);

  it('nginx runs with its workers as www-data', async () => {
    expect(await c2.sh('systemctl is-active nginx.service')).toBe('active');
    const uids = await c2.sh(
      'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = nginx ] && ' +
        "awk '/^Uid:/ {print $2}' $p/status; done | sort -u",
    );
    expect(uids.split('\n')).toEqual(['0', await c2.sh('id -u www-data')]);
  });

  it('the hook installs with certificate.owner traefik and webroot; the unit issues through nginx', async () => {
    const { CERT_AGENT_LISTEN: _standalone, ...env } = hookEnv();
    const vars = { ...env, CERT_AGENT_OWNER: 'traefik', CERT_AGENT_CHALLENGE: 'webroot', CERT_AGENT_WAIT: '60' };
    const r = await c2.exec(['sh', '/root/postinstall.sh'], vars, 150_000);
    const log = async () => `${r.stdout}${r.stderr}\n${await unitLog()}`;
    expect(r.code, await log()).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('postinstall: started cert-agent.service');
    expect(r.stdout).toContain('cert-agent OK');
    expect(await c2.sh('cat /etc/cert-agent/config.yaml')).toMatch(/owner: traefik/);

    // The unit issued it, with its sandbox as shipped: UMask=0077 and a
    // filter that allows chown and nothing else privileged.
    const shown = await c2.sh('systemctl show cert-agent.service -p UMask,SystemCallFilter,ActiveState');
    const p = Object.fromEntries(
      shown.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(p.ActiveState).toBe('active');
    expect(p.UMask).toBe('0077');
    const allowed = (p.SystemCallFilter ?? '').split(' ');
    expect(allowed).toEqual(expect.arrayContaining(['chown', 'fchown', 'fchownat', 'lchown']));
    for (const denied of ['setuid', 'setresuid', 'mount', 'chroot', 'setgroups', 'settimeofday']) {
      expect(allowed).not.toContain(denied);
    }
    const installed = (await journal()).filter((e) => e.event === 'certificate_installed');
    expect(installed).toHaveLength(1);

    writeFileSync(at2('root/ca-root.pem'), ca.rootPem);
    const cert = at2('etc/cert-agent/tls/cert.pem');
    const chain = at2('etc/cert-agent/tls/chain.pem');
    const verdict = execFileSync('openssl', ['verify', '-CAfile', at2('root/ca-root.pem'), '-untrusted', chain, cert], {
      encoding: 'utf8',
    });
    expect(verdict.trim()).toBe(`${cert}: OK`);
    // step-ca fetched the token from nginx's www-data workers, and got it.
    const fetched = /"GET \/\.well-known\/acme-challenge\/[\w-]{16,} HTTP\/1\.1" 200 /;
    expect(await c2.sh('cat /var/log/nginx/access.log')).toMatch(fetched);
    expect(await c2.sh(`ls -A ${WEBROOT}`)).toBe('');
  }, 200_000);

  it('the owner reads the key and the full chain; nobody else reads the key', async () => {
    for (const f of ['key.pem', 'fullchain.pem']) {
      const r = await asUser('traefik', ['cat', `/etc/cert-agent/tls/${f}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(readFileSync(at2(`etc/cert-agent/tls/${f}`), 'utf8'));
    }
    for (const other of ['www-data', 'nobody']) {
      const r = await asUser(other, ['cat', '/etc/cert-agent/tls/key.pem']);
      expect(r.code, `${other} read the key`).not.toBe(0);
      expect(r.stderr).toMatch(/Permission denied/);
    }
  });

  it("the metrics textfile, written under UMask=0077, is readable by node_exporter's user", async () => {
    // As an operator enables it: the path in the config, its directory writable for the unit.
    await c2.sh(`install -d -m 0755 ${dirname(TEXTFILE)}`);
    await c2.sh(`printf 'metrics:\\n  textfile: ${TEXTFILE}\\n' >> /etc/cert-agent/config.yaml`);
    const dropIn = at2('etc/systemd/system/cert-agent.service.d/metrics.conf');
    writeFileSync(dropIn, `[Service]\nReadWritePaths=${dirname(TEXTFILE)}\n`);
    await c2.sh('systemctl daemon-reload && systemctl restart cert-agent.service');
    const deadline = Date.now() + 30_000;
    while (!existsSync(at2(TEXTFILE))) {
      if (Date.now() > deadline) throw new Error(`no ${TEXTFILE}:\n${await unitLog()}`);
      await sleep(500);
    }
    expect(statSync(at2(TEXTFILE)).mode & 0o777).toBe(0o644);
    const r = await asUser('nobody', ['cat', TEXTFILE]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^cert_agent_\w+/m);
  });
});
