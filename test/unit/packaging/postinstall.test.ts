/**
 * The template hook checks its input before it installs anything, with the
 * same idea of a fingerprint as the agent: as step, openssl -fingerprint
 * -sha256 and sha256sum print it. Each run stops at a later input check
 * (CERT_AGENT_WAIT) so that nothing is ever installed here. A dns-01 server
 * must be an IP address; one outside the units' private ranges gets its own
 * IPAddressAllow= drop-in (the hook's own lines, run against a scratch
 * directory in place of /etc/systemd/system). The TSIG key's file must be
 * in the container already, root's alone: checked before anything is
 * installed, not by enroll after the package is in.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../helpers/agent.js';

const HOOK = join(import.meta.dirname, '../../../packaging/postinstall.sh');
const HEX = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const COLONS = HEX.toUpperCase().match(/../g)!.join(':');

function hook(fingerprint: string, more: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  const env = {
    ...more,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    CERT_AGENT_CA_URL: 'https://ca.internal:9000',
    CERT_AGENT_FINGERPRINT: fingerprint,
    CERT_AGENT_DOMAINS: 'app.internal',
    CERT_AGENT_WAIT: 'soon', // refused after the fingerprint: the hook stops before installing
  };
  return new Promise((resolve) => {
    execFile('/bin/sh', [HOOK], { env }, (err, _stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code) : 0, stderr });
    });
  });
}

describe.runIf(process.getuid?.() === 0)('the hook takes a fingerprint as the tools print it', () => {
  it.each([
    ['step certificate fingerprint', HEX],
    ['openssl 3 -fingerprint -sha256', `sha256 Fingerprint=${COLONS}`],
    ['openssl 1.1 -fingerprint -sha256', `SHA256 Fingerprint=${COLONS}`],
    ['sha256sum of stdin', `${HEX}  -`],
    ['two pins, comma-separated', `${HEX},sha256 Fingerprint=${COLONS}`],
  ])('accepts %s', async (_what, fingerprint) => {
    const r = await hook(fingerprint);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe('postinstall: CERT_AGENT_WAIT=soon: must be a number of seconds\n');
  });

  it.each([
    ['too short', HEX.slice(2)],
    ['sha256sum of a file (the PEM, not the DER)', `${HEX}  root_ca.crt`],
  ])('refuses %s (64), naming it', async (_what, fingerprint) => {
    const r = await hook(fingerprint);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('CERT_AGENT_FINGERPRINT: "');
    expect(r.stderr).toContain('is not a SHA-256 fingerprint');
  });
});

describe.runIf(process.getuid?.() === 0)('CERT_AGENT_DNS_SERVER', () => {
  const script = readFileSync(HOOK, 'utf8');
  const fn = (name: string) => new RegExp(`^${name}\\(\\) \\{\\n[\\s\\S]*?^\\}\\n`, 'm').exec(script)?.[0] ?? '';
  const functions = fn('dns_server_address') + fn('in_unit_ranges');
  /** The hook's step that writes the drop-in, with `root` in place of /etc/systemd/system. */
  const dropinStep = (root: string) =>
    (/^# A DNS server outside the units' ranges[\s\S]*?^fi\n/m.exec(script)?.[0] ?? '').replaceAll(
      '/etc/systemd/system/',
      `${root}/`,
    );
  const sh = (code: string, env: Record<string, string> = {}) =>
    execFileSync('/bin/sh', ['-eu', '-c', `say() { :; }\n${functions}\n${code}`], { env: { PATH: process.env.PATH, ...env } })
      .toString();

  it.each(['10.0.0.53', '10.0.0.53:5353', '[fd00::53]:53', 'fd00::53', '172.31.0.1', '100.64.0.1', '127.0.0.1:53'])(
    '%s is an address the units allow: no drop-in',
    (server) => {
      const root = tempDir('cert-agent-units-');
      try {
        sh(`DNS_ADDR=$(dns_server_address "$S"); units_changed=""\n${dropinStep(root)}`, { S: server });
        expect(readdirSync(root)).toEqual([]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  );

  it.each([
    ['192.0.2.53', '192.0.2.53'],
    ['192.0.2.53:5353', '192.0.2.53'],
    ['172.32.0.1', '172.32.0.1'],
    ['[2001:db8::53]:53', '2001:db8::53'],
    ['2001:db8::53', '2001:db8::53'],
  ])('%s is outside them: both services get IPAddressAllow=%s, and nothing more', (server, address) => {
    const root = tempDir('cert-agent-units-');
    try {
      const step = `DNS_ADDR=$(dns_server_address "$S"); units_changed=""\n${dropinStep(root)}\necho "$units_changed"`;
      expect(sh(step, { S: server }).trim()).toBe('1');
      for (const svc of ['cert-agent', 'cert-agent-pass']) {
        const text = readFileSync(join(root, `${svc}.service.d/dns-server.conf`), 'utf8');
        expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual(['[Service]', `IPAddressAllow=${address}`, '']);
      }
      // A repeat run changes nothing.
      expect(sh(step, { S: server }).trim()).toBe('');
      // Moved to a private address: the old allowance goes; so it does when dns-01 is given up.
      expect(sh(step, { S: '10.0.0.53' }).trim()).toBe('1');
      expect(readdirSync(root).flatMap((d) => readdirSync(join(root, d)))).toEqual([]);
      sh(step, { S: server });
      const dropped = `DNS_ADDR=""; units_changed=""\n${dropinStep(root)}\necho "$units_changed"`;
      expect(sh(dropped, { CERT_AGENT_CHALLENGE: 'webroot' }).trim()).toBe('1');
      expect(readdirSync(root).flatMap((d) => readdirSync(join(root, d)))).toEqual([]);
      // Without the variables (a re-run for another reason) the allowance stays.
      sh(step, { S: server });
      expect(sh(dropped).trim()).toBe('');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a host name, or anything but an address, is refused (64) before anything is installed', async () => {
    const refused = ['ns1.internal', 'ns1.internal:53', '10.0.0.53\nIPAddressAllow=any', '10.0.0.53:53:53', '999.1.1.1', '[10.0.0.53]:53', '10.0.0.53:0', '10.0.0.53:70000'];
    for (const server of refused) {
      const r = await hook(HEX, { CERT_AGENT_DNS_SERVER: server });
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(/^postinstall: CERT_AGENT_DNS_SERVER=\S+: must be an IP address .*not a host name; nothing was installed\n$/);
    }
    const ok = await hook(HEX, { CERT_AGENT_DNS_SERVER: '[2001:db8::53]:53' });
    expect(ok.stderr).toBe('postinstall: CERT_AGENT_WAIT=soon: must be a number of seconds\n');
  });
});

describe.runIf(process.getuid?.() === 0)('CERT_AGENT_TSIG_SECRET_FILE', () => {
  const dns = (file: string) => ({ CERT_AGENT_CHALLENGE: 'dns', CERT_AGENT_TSIG_SECRET_FILE: file });
  const refusal = (file: string, problem: RegExp) =>
    new RegExp(`^postinstall: CERT_AGENT_TSIG_SECRET_FILE=${file}: ${problem.source}.*; nothing was installed\\n$`);

  it('a file that is not there, open to others, not root\'s or not a file is refused (64) before anything is installed', async () => {
    const dir = tempDir('cert-agent-tsig-');
    try {
      const open = join(dir, 'open.secret');
      writeFileSync(open, 'c2VjcmV0\n', { mode: 0o644 });
      chmodSync(open, 0o644);
      const foreign = join(dir, 'foreign.secret');
      writeFileSync(foreign, 'c2VjcmV0\n', { mode: 0o600 });
      chownSync(foreign, 1000, 1000);
      const good = join(dir, 'tsig.secret');
      writeFileSync(good, 'c2VjcmV0\n', { mode: 0o600 });
      const link = join(dir, 'link.secret');
      symlinkSync(good, link);
      mkdirSync(join(dir, 'a-dir'), { mode: 0o700 });
      const cases: [string, RegExp][] = [
        [join(dir, 'missing.secret'), /does not exist/],
        [open, /is readable or writable by group or others \(mode 0644\)/],
        [foreign, /is owned by uid 1000, not root/],
        [link, /is a symlink/],
        [join(dir, 'a-dir'), /is not a regular file/],
      ];
      for (const [file, problem] of cases) {
        const r = await hook(HEX, dns(file));
        expect(r.code, r.stderr).toBe(64);
        expect(r.stderr).toMatch(refusal(file, problem));
      }
      // Root's, 0600: on to the next check.
      const ok = await hook(HEX, dns(good));
      expect(ok.stderr).toBe('postinstall: CERT_AGENT_WAIT=soon: must be a number of seconds\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
