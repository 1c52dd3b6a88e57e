/**
 * The .deb and the template hook in a real Debian 13 root filesystem
 * (debootstrap, cached), driven with chroot: refused input installs nothing;
 * the hook installs the package, enrolls against the real step-ca on the
 * host, enables the unit without a running systemd and obtains the first
 * certificate; a second run changes nothing; remove and purge clean up.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { buildDeb, inChroot, removeTree, seaExecutable, unpackRootfs } from '../harness/rootfs.js';

const ROOT = resolve(import.meta.dirname, '../..');
let ca: StepCa;
let root: string;
let debName: string;
const at = (p: string) => join(root, p);
const mode = (p: string) => statSync(at(p)).mode & 0o777;

beforeAll(async () => {
  ca = await startStepCa();
  const deb = buildDeb();
  debName = basename(deb);
  root = unpackRootfs();
  // As in a real container: the agent's http-01 self-check resolves the
  // names the way this system does, and a debootstrap tree has no hosts file.
  if (!existsSync(at('etc/hosts'))) writeFileSync(at('etc/hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  copyFileSync(deb, at(`root/${debName}`));
  copyFileSync(join(ROOT, 'packaging/postinstall.sh'), at('root/postinstall.sh'));
}, 300_000);

afterAll(async () => {
  await ca?.cleanup();
  if (root) removeTree(root);
});

function hookEnv(): Record<string, string> {
  return {
    CERT_AGENT_CA_URL: ca.url,
    CERT_AGENT_FINGERPRINT: ca.rootFingerprint,
    CERT_AGENT_DOMAINS: 'localhost,127.0.0.1',
    // step-ca validates http-01 on this port instead of 80 (test CA only).
    CERT_AGENT_LISTEN: `127.0.0.1:${ca.acmeHttpPort}`,
    CERT_AGENT_DEB: `/root/${debName}`,
  };
}

/** Path → type, mode, owner, size, mtime and content hash (or link target), for every file under the given dirs. */
function snapshot(dirs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const st = lstatSync(at(rel));
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(at(rel))} ${st.mtimeMs}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      for (const e of readdirSync(at(rel))) walk(join(rel, e));
    } else
      out[rel] = `file ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${createHash(
        'sha256',
      )
        .update(readFileSync(at(rel)))
        .digest('hex')}`;
  };
  for (const d of dirs) if (existsSync(at(d))) walk(d);
  return out;
}

describe('Debian package and template hook in a debootstrapped trixie', () => {
  it("the root filesystem has Debian's nodejs 20 and no running systemd", async () => {
    const r = await inChroot(root, ['node', '--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^v20\./);
    expect(existsSync(at('run/systemd/system'))).toBe(false);
  });

  it('refuses missing input with exit 64, naming every missing variable, and installs nothing', async () => {
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], { CERT_AGENT_DEB: `/root/${debName}` });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('missing: CERT_AGENT_CA_URL CERT_AGENT_FINGERPRINT CERT_AGENT_DOMAINS');
    const bad = await inChroot(root, ['sh', '/root/postinstall.sh'], { ...hookEnv(), CERT_AGENT_FINGERPRINT: 'abc' });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('CERT_AGENT_FINGERPRINT: "abc" is not a SHA-256 fingerprint');
    const badMode = await inChroot(root, ['sh', '/root/postinstall.sh'], { ...hookEnv(), CERT_AGENT_MODE: 'cron' });
    expect(badMode.code).toBe(64);
    expect(badMode.stderr).toBe('postinstall: CERT_AGENT_MODE=cron: must be daemon or timer; nothing was installed\n');
    expect(existsSync(at('usr/lib/cert-agent'))).toBe(false);
    expect(existsSync(at('etc/cert-agent'))).toBe(false);
    expect((await inChroot(root, ['dpkg-query', '-W', 'cert-agent'])).code).not.toBe(0);
  });

  it('refuses a path that would go into the unit drop-in unsafely: exit 64, before anything', async () => {
    const cases: [string, string][] = [
      ['CERT_AGENT_CERT_DIR', '/srv/tls\nExecStartPre=+/bin/touch /injected'],
      ['CERT_AGENT_STATE_DIR', '/srv/my state'],
      ['CERT_AGENT_WEBROOT', 'var/www/acme-challenge'],
      ['CERT_AGENT_CERT_DIR', '/srv/../etc/cert-agent'],
    ];
    for (const [name, value] of cases) {
      const env = { ...hookEnv(), CERT_AGENT_CHALLENGE: 'webroot', [name]: value };
      const r = await inChroot(root, ['sh', '/root/postinstall.sh'], env);
      expect(r.code, `${name}=${JSON.stringify(value)}: ${r.stdout}${r.stderr}`).toBe(64);
      // One line naming the variable and what is allowed.
      const allowed = 'must be an absolute path of letters, digits and / \\. _ - \\+ @ ';
      const line = `^postinstall: ${name}=[^\\n]*: ${allowed}[^\\n]*nothing was installed\\n$`;
      expect(r.stderr).toMatch(new RegExp(line));
      expect(r.stdout).toBe('');
    }
    expect(existsSync(at('etc/systemd/system/cert-agent.service.d'))).toBe(false);
    expect(existsSync(at('injected'))).toBe(false);
    expect(existsSync(at('srv/tls'))).toBe(false);
    expect(existsSync(at('srv/my state'))).toBe(false);
    expect(existsSync(at('var/www'))).toBe(false);
    expect(existsSync(at('usr/lib/cert-agent'))).toBe(false);
    expect(existsSync(at('etc/cert-agent'))).toBe(false);
    expect((await inChroot(root, ['dpkg-query', '-W', 'cert-agent'])).code).not.toBe(0);
  });

  it('installs, enrolls, enables timer mode (the default) and obtains the first certificate', async () => {
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('postinstall: installing cert-agent_');
    expect(r.stdout).toContain(`pinned CA root ${ca.rootFingerprint}`);
    // postinst enabled it already (no systemd running: links only, nothing started).
    expect(r.stdout).toContain('postinstall: cert-agent.timer already enabled');
    expect(r.stdout).toContain('cert-agent OK');

    expect(readlinkSync(at('etc/systemd/system/timers.target.wants/cert-agent.timer'))).toBe(
      '/usr/lib/systemd/system/cert-agent.timer',
    );
    expect(existsSync(at('etc/systemd/system/multi-user.target.wants/cert-agent.service'))).toBe(false);
    expect(lstatSync(at('usr/bin/cert-agent')).isSymbolicLink()).toBe(true);
    expect(mode('etc/cert-agent')).toBe(0o755);
    expect(mode('etc/cert-agent/config.yaml')).toBe(0o600);
    expect(mode('etc/cert-agent/tls')).toBe(0o700);
    expect(mode('etc/cert-agent/tls/key.pem')).toBe(0o600);
    expect(mode('var/lib/cert-agent')).toBe(0o700);
    expect(mode('var/lib/cert-agent/account.key')).toBe(0o600);

    // The certificate verifies against the CA's root, checked on the host by openssl.
    writeFileSync(at('root/ca-root.pem'), ca.rootPem);
    const verdict = execFileSync(
      'openssl',
      [
        'verify',
        '-CAfile',
        at('root/ca-root.pem'),
        '-untrusted',
        at('etc/cert-agent/tls/chain.pem'),
        at('etc/cert-agent/tls/cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    expect(verdict.trim()).toBe(`${at('etc/cert-agent/tls/cert.pem')}: OK`);
  });

  it('a second run changes nothing', async () => {
    const dirs = ['etc', 'var/lib/cert-agent', 'var/lib/dpkg', 'usr/lib/cert-agent', 'usr/bin'];
    const before = snapshot(dirs);
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('already installed');
    expect(r.stdout).toContain('unchanged');
    expect(r.stdout).toContain('already enabled');
    expect(r.stdout).toContain('not renewing');
    expect(snapshot(dirs)).toEqual(before);
  });

  it('the installed agent renews against the step-ca from inside the root filesystem', async () => {
    const serial = () =>
      execFileSync('openssl', ['x509', '-noout', '-serial', '-in', at('etc/cert-agent/tls/cert.pem')], {
        encoding: 'utf8',
      }).trim();
    const old = serial();
    const r = await inChroot(root, ['cert-agent', 'renew', '--force']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(serial()).not.toBe(old);
    expect(mode('etc/cert-agent/tls/key.pem')).toBe(0o600);
  });

  it('CERT_AGENT_MODE=daemon switches to the daemon, and timer back; each once', async () => {
    const daemon = await inChroot(root, ['sh', '/root/postinstall.sh'], { ...hookEnv(), CERT_AGENT_MODE: 'daemon' });
    expect(daemon.code, daemon.stderr).toBe(0);
    expect(daemon.stdout).toContain('postinstall: disabled cert-agent.timer (daemon mode)');
    expect(daemon.stdout).toContain('postinstall: enabled cert-agent.service');
    expect(readlinkSync(at('etc/systemd/system/multi-user.target.wants/cert-agent.service'))).toBe(
      '/usr/lib/systemd/system/cert-agent.service',
    );
    expect(existsSync(at('etc/systemd/system/timers.target.wants/cert-agent.timer'))).toBe(false);
    const timer = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv());
    expect(timer.code, timer.stderr).toBe(0);
    expect(timer.stdout).toContain('postinstall: disabled cert-agent.service (timer mode)');
    expect(timer.stdout).toContain('postinstall: enabled cert-agent.timer');
    expect(readlinkSync(at('etc/systemd/system/timers.target.wants/cert-agent.timer'))).toBe(
      '/usr/lib/systemd/system/cert-agent.timer',
    );
    expect(existsSync(at('etc/systemd/system/multi-user.target.wants/cert-agent.service'))).toBe(false);
    const again = await inChroot(root, ['sh', '/root/postinstall.sh'], hookEnv());
    expect(again.stdout).toContain('postinstall: cert-agent.timer already enabled');
    expect(again.stdout).not.toContain('disabled');
  });

  it('remove keeps config and state and masks the units; purge deletes them', async () => {
    const rm = await inChroot(root, ['dpkg', '-r', 'cert-agent']);
    expect(rm.code).toBe(0);
    expect(existsSync(at('usr/lib/cert-agent/cert-agent.cjs'))).toBe(false);
    expect(existsSync(at('etc/cert-agent/config.yaml'))).toBe(true);
    expect(existsSync(at('var/lib/cert-agent/account.key'))).toBe(true);
    expect(readlinkSync(at('etc/systemd/system/cert-agent.service'))).toBe('/dev/null');
    expect(readlinkSync(at('etc/systemd/system/cert-agent.timer'))).toBe('/dev/null');
    const purge = await inChroot(root, ['dpkg', '-P', 'cert-agent']);
    expect(purge.code).toBe(0);
    expect(existsSync(at('etc/cert-agent'))).toBe(false);
    expect(existsSync(at('var/lib/cert-agent'))).toBe(false);
    expect(existsSync(at('etc/systemd/system/cert-agent.service'))).toBe(false);
    expect(existsSync(at('etc/systemd/system/multi-user.target.wants/cert-agent.service'))).toBe(false);
    expect(existsSync(at('etc/systemd/system/cert-agent.timer'))).toBe(false);
    expect(existsSync(at('etc/systemd/system/timers.target.wants/cert-agent.timer'))).toBe(false);
  });

  it('without the package: installs the single executable, writes a drop-in for a custom cert dir, issues; a repeat changes nothing', async () => {
    // As on a Debian 12 template, whose nodejs (18) is too old: no `node` at all.
    await inChroot(root, ['mv', '/usr/bin/node', '/usr/bin/node.hidden']);
    copyFileSync(seaExecutable(), at('root/cert-agent'));
    for (const u of ['cert-agent.service', 'cert-agent-pass.service', 'cert-agent.timer'])
      copyFileSync(join(ROOT, 'packaging', u), at(`root/${u}`));
    const env = {
      ...hookEnv(),
      CERT_AGENT_DEB: '',
      CERT_AGENT_BUNDLE: '/root/cert-agent',
      CERT_AGENT_CERT_DIR: '/srv/tls',
    };
    const r = await inChroot(root, ['sh', '/root/postinstall.sh'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('postinstall: installed /usr/lib/cert-agent/cert-agent');
    expect(r.stdout).toContain('cert-agent OK');
    expect(readlinkSync(at('usr/bin/cert-agent'))).toBe('/usr/lib/cert-agent/cert-agent');
    expect(readlinkSync(at('etc/systemd/system/timers.target.wants/cert-agent.timer'))).toBe(
      '/etc/systemd/system/cert-agent.timer',
    );
    for (const svc of ['cert-agent.service', 'cert-agent-pass.service']) {
      expect(readFileSync(at(`etc/systemd/system/${svc}.d/paths.conf`), 'utf8')).toContain(
        'ReadWritePaths=-/srv/tls\n',
      );
    }
    expect(mode('srv/tls')).toBe(0o700);
    expect(mode('srv/tls/key.pem')).toBe(0o600);
    expect(mode('var/lib/cert-agent')).toBe(0o700);

    const dirs = ['etc', 'srv', 'var/lib/cert-agent', 'usr/lib/cert-agent', 'usr/bin'];
    const before = snapshot(dirs);
    const again = await inChroot(root, ['sh', '/root/postinstall.sh'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('/usr/lib/cert-agent/cert-agent already installed');
    expect(snapshot(dirs)).toEqual(before);
  });
});
