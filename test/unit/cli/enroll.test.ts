/**
 * What `enroll` writes when the operator leaves a choice open: the challenge
 * mode and reload.verify follow the reload target (nginx and Traefik own
 * port 80 and serve TLS on 443), and --reload-command takes an argv, never
 * a shell line; the dns-01 flags and what they write, each bad value a usage
 * error (64) with nothing written. Run through the bundle with a root file,
 * so no CA is needed.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { join } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { enrollInputFrom, mergeEnrollInput, parseArgvInput } from '../../../agent/cli/enroll.js';
import { UsageError } from '../../../agent/lib/errors.js';
import { runAgent, tempDir } from '../../helpers/agent.js';
import { makeCa, type TestCa } from '../../helpers/certs.js';
import schema from '../../../docs/status.schema.json' with { type: 'json' };

const BASE = { 'ca-url': 'https://ca.internal:9000', domain: ['app.internal'] };
const merged = (input: Record<string, unknown>, existing?: string) =>
  mergeEnrollInput(existing, { ...BASE, ...input }).toJS();

describe('defaults that follow the reload target', () => {
  it.each([
    ['nginx', 'webroot', '127.0.0.1:443'],
    ['traefik', 'proxy', '127.0.0.1:443'],
    ['command', undefined, undefined],
    ['none', undefined, undefined],
  ])('--reload %s: challenge %s, verify %s', (target, mode, verify) => {
    const doc = merged({ reload: target });
    expect(doc.challenge?.mode).toBe(mode);
    expect(doc.reload?.verify).toBe(verify);
  });

  it('a given --challenge or --verify wins', () => {
    const doc = merged({ reload: 'nginx', challenge: 'standalone', verify: '127.0.0.1:8443' });
    expect(doc.challenge.mode).toBe('standalone');
    expect(doc.reload.verify).toBe('127.0.0.1:8443');
  });

  it('an existing file keeps what it says while the target stays', () => {
    const existing = 'reload:\n  target: nginx\nchallenge:\n  mode: standalone\n';
    const doc = merged({ reload: 'nginx' }, existing);
    expect(doc.challenge.mode).toBe('standalone');
    expect(doc.reload.verify).toBeUndefined();
  });

  it('a change of target moves a value that followed the old target, not one chosen by hand', () => {
    const followed = 'reload:\n  target: nginx\n  verify: 127.0.0.1:443\nchallenge:\n  mode: webroot\n';
    const toTraefik = merged({ reload: 'traefik' }, followed);
    expect(toTraefik.challenge.mode).toBe('proxy');
    expect(toTraefik.reload.verify).toBe('127.0.0.1:443');
    const toNone = merged({ reload: 'none' }, followed);
    expect(toNone.challenge?.mode).toBeUndefined();
    expect(toNone.reload.verify).toBeUndefined();
    const chosen = 'reload:\n  target: nginx\n  verify: 10.0.0.5:8443\nchallenge:\n  mode: standalone\n';
    const kept = merged({ reload: 'traefik' }, chosen);
    expect(kept.challenge.mode).toBe('standalone');
    expect(kept.reload.verify).toBe('10.0.0.5:8443');
  });
});

describe('--reload-command', () => {
  it.each([
    ['one flag per argument', ['systemctl', 'reload', 'haproxy'], ['systemctl', 'reload', 'haproxy']],
    ['a JSON array', ['["systemctl","reload","haproxy"]'], ['systemctl', 'reload', 'haproxy']],
    ['a lone program', ['/usr/local/bin/reload-tls'], ['/usr/local/bin/reload-tls']],
    ['an argument with a space among several', ['logger', 'cert renewed'], ['logger', 'cert renewed']],
  ])('%s', (_what, raw, argv) => {
    expect(parseArgvInput(raw, '--reload-command')).toEqual(argv);
  });

  it.each([
    ['a shell line', ['systemctl reload haproxy'], /is a shell line; commands run without a shell/],
    ['bad JSON', ['["systemctl",'], /not a JSON array of strings/],
    ['an empty array', ['[]'], /non-empty JSON array/],
    ['a non-string element', ['["kill", 1]'], /non-empty JSON array of non-empty strings/],
    ['an empty argument', ['a', ''], /an argument is empty/],
  ])('refuses %s as a usage error', (_what, raw, message) => {
    expect(() => parseArgvInput(raw, '--reload-command')).toThrow(UsageError);
    expect(() => parseArgvInput(raw, '--reload-command')).toThrow(message);
  });

  it('CERT_AGENT_RELOAD_COMMAND is a JSON array; the flag wins over it', () => {
    const env = { CERT_AGENT_RELOAD_COMMAND: '["systemctl","reload","haproxy"]' };
    expect(enrollInputFrom({}, env)['reload-command']).toEqual(['systemctl', 'reload', 'haproxy']);
    expect(enrollInputFrom({ 'reload-command': ['true'] }, env)['reload-command']).toEqual(['true']);
    expect(() => enrollInputFrom({}, { CERT_AGENT_RELOAD_COMMAND: 'systemctl reload x' })).toThrow(
      /CERT_AGENT_RELOAD_COMMAND "systemctl reload x" is a shell line/,
    );
  });
});

describe('dns-01 flags', () => {
  const TSIG = { 'dns-server': '10.0.0.53', 'tsig-name': 'cert-agent', 'tsig-secret-file': '/etc/cert-agent/k' };

  it('write challenge.dns: the TSIG form, or a command; a number for the timeout', () => {
    const doc = merged({ challenge: 'dns', ...TSIG, 'dns-zone': 'app.internal', 'dns-propagation-timeout': 300 });
    expect(doc.challenge).toEqual({
      mode: 'dns',
      dns: {
        server: '10.0.0.53',
        zone: 'app.internal',
        tsig: { name: 'cert-agent', secretFile: '/etc/cert-agent/k' },
        propagationTimeout: 300,
      },
    });
    const hook = merged({ challenge: 'dns', 'dns-command': ['/usr/local/bin/dns-hook', '--quiet'] });
    expect(hook.challenge.dns).toEqual({ command: ['/usr/local/bin/dns-hook', '--quiet'] });
  });

  it('one form given replaces the other in the file; another mode without dns flags drops the section', () => {
    const existing = 'challenge:\n  mode: dns\n  dns:\n    server: 10.0.0.53\n    tsig: { name: k, secretFile: /k }\n';
    expect(merged({ 'dns-command': ['hook'] }, existing).challenge.dns).toEqual({
      server: '10.0.0.53',
      command: ['hook'],
    });
    const withCommand = 'challenge:\n  mode: dns\n  dns:\n    command: [hook]\n';
    expect(merged({ ...TSIG }, withCommand).challenge.dns).not.toHaveProperty('command');
    expect(merged({ challenge: 'standalone' }, existing).challenge).toEqual({ mode: 'standalone' });
    expect(merged({ reload: 'nginx' }, existing).challenge.mode).toBe('dns');
  });

  it('--name with the dns flags: that certificate alone switches to dns-01, the shared sections stay', () => {
    const existing = 'ca:\n  url: https://ca.internal:9000\ncertificates:\n  - name: a\n    domains: [a.internal]\n';
    const input = { domain: ['*.b.internal'], challenge: 'dns', 'dns-command': ['hook'] };
    const doc = mergeEnrollInput(existing, input, 'b').toJS();
    expect(doc.challenge).toBeUndefined();
    expect(doc.certificates[0]).toEqual({ name: 'a', domains: ['a.internal'] });
    expect(doc.certificates[1]).toEqual({
      name: 'b',
      domains: ['*.b.internal'],
      challenge: { mode: 'dns', dns: { command: ['hook'] } },
    });
  });

  it('CERT_AGENT_DNS_COMMAND is a JSON array, the timeout a number unless it is not one', () => {
    const env = { CERT_AGENT_DNS_COMMAND: '["/usr/local/bin/dns-hook","x"]', CERT_AGENT_DNS_PROPAGATION_TIMEOUT: '90' };
    expect(enrollInputFrom({}, env)).toEqual({
      'dns-command': ['/usr/local/bin/dns-hook', 'x'],
      'dns-propagation-timeout': 90,
    });
    expect(enrollInputFrom({ 'dns-propagation-timeout': '2m' }, env)['dns-propagation-timeout']).toBe('2m');
    expect(() => enrollInputFrom({}, { CERT_AGENT_DNS_COMMAND: 'dns-hook --zone x' })).toThrow(
      /CERT_AGENT_DNS_COMMAND "dns-hook --zone x" is a shell line; .*give one --dns-command per argument/,
    );
  });
});

describe('enroll through the bundle', () => {
  let ca: TestCa;
  let rootFile: string;
  beforeAll(async () => {
    ca = await makeCa('Enroll');
    rootFile = join(tempDir(), 'root.pem');
    writeFileSync(rootFile, ca.root.pem);
  });
  const enroll = (dir: string, extra: string[], env: Record<string, string> = {}) =>
    runAgent(
      [
        'enroll',
        '--config',
        join(dir, 'config.yaml'),
        '--ca-url',
        'https://ca.internal:9000',
        ...(extra.includes('--fingerprint') || env.CERT_AGENT_FINGERPRINT ? [] : ['--fingerprint', ca.fingerprint]),
        '--root-file',
        rootFile,
        '--domain',
        'app.internal',
        '--cert-dir',
        join(dir, 'tls'),
        '--state-dir',
        join(dir, 'state'),
        ...extra,
      ],
      { env },
    );

  it('--reload command with --reload-command can be enrolled, and the config holds the argv', async () => {
    const dir = tempDir();
    const r = await enroll(dir, [
      '--reload',
      'command',
      '--reload-command',
      'systemctl',
      '--reload-command',
      'reload',
      '--reload-command',
      'haproxy',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('reload: command ["systemctl","reload","haproxy"]; challenge: standalone');
    const config = parse(readFileSync(join(dir, 'config.yaml'), 'utf8'));
    expect(config.reload).toEqual({ target: 'command', command: ['systemctl', 'reload', 'haproxy'] });
    const again = await enroll(dir, [], { CERT_AGENT_RELOAD_COMMAND: '["systemctl","reload","haproxy"]' });
    expect(again.stdout).toContain('unchanged:');
  });

  it('--reload nginx writes challenge webroot and verify 127.0.0.1:443', async () => {
    const dir = tempDir();
    const r = await enroll(dir, ['--reload', 'nginx']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'reload: nginx (checked on 127.0.0.1:443); challenge: webroot on /var/www/acme-challenge',
    );
    const config = parse(readFileSync(join(dir, 'config.yaml'), 'utf8'));
    expect(config.challenge.mode).toBe('webroot');
    expect(config.reload.verify).toBe('127.0.0.1:443');
  });

  it('--reload command without a command is refused (64), naming the flag', async () => {
    const dir = tempDir();
    const r = await enroll(dir, ['--reload', 'command']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--reload-command/);
  });

  it('every missing required flag is named in one usage error (64), and nothing is written', async () => {
    const dir = tempDir();
    const r = await runAgent(['enroll', '--config', join(dir, 'config.yaml'), '--state-dir', join(dir, 'state')]);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe(
      'cert-agent: enroll needs --ca-url URL (CERT_AGENT_CA_URL), --fingerprint HEX (CERT_AGENT_FINGERPRINT), ' +
        '--domain NAME (CERT_AGENT_DOMAINS) (see cert-agent enroll --help)\n',
    );
    expect(existsSync(join(dir, 'config.yaml'))).toBe(false);
    const noPin = await runAgent([
      'enroll',
      '--config',
      join(dir, 'config.yaml'),
      '--ca-url',
      'https://ca.internal:9000',
      '--domain',
      'app.internal',
    ]);
    expect(noPin.code).toBe(64);
    expect(noPin.stderr).toMatch(/^cert-agent: enroll needs --fingerprint HEX \(CERT_AGENT_FINGERPRINT\) \(see/);
  });

  it('bootstrap names each missing flag (64)', async () => {
    const r = await runAgent(['bootstrap']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/bootstrap needs --ca-url URL \(CERT_AGENT_CA_URL\), --fingerprint HEX/);
  });

  it('a fingerprint pasted from openssl or sha256sum is pinned as the hex', async () => {
    const dir = tempDir();
    const colons = ca.fingerprint.toUpperCase().match(/../g)!.join(':');
    const viaOpenssl = await enroll(dir, ['--fingerprint', `sha256 Fingerprint=${colons}`]);
    expect(viaOpenssl.stderr).toBe('');
    expect(viaOpenssl.code).toBe(0);
    expect(parse(readFileSync(join(dir, 'config.yaml'), 'utf8')).ca.fingerprint).toEqual([ca.fingerprint]);
    const other = tempDir();
    const viaSum = await enroll(other, [], { CERT_AGENT_FINGERPRINT: `${ca.fingerprint}  -` });
    expect(viaSum.code).toBe(0);
    expect(viaSum.stdout).toContain(`pinned CA root ${ca.fingerprint}`);
  });

  it('a re-pin records the old and new fingerprint and who vouched; status shows it, a bad --vouched-by is refused', async () => {
    const dir = tempDir();
    expect((await enroll(dir, [])).code).toBe(0);
    const next = await makeCa('Enroll recreated');
    const nextRoot = join(dir, 'next-root.pem');
    writeFileSync(nextRoot, next.root.pem);
    const config = readFileSync(join(dir, 'config.yaml'), 'utf8');
    // Control characters or quoting in who vouched: one usage line, nothing written.
    const bad = await enroll(dir, [
      '--fingerprint',
      next.fingerprint,
      '--root-file',
      nextRoot,
      '--vouched-by',
      'x\u001b[2J',
    ]);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/--vouched-by "x\\u001b\[2J": 1 to 100 letters, digits, spaces/);
    expect(readFileSync(join(dir, 'config.yaml'), 'utf8')).toBe(config);
    const r = await enroll(dir, [
      '--fingerprint',
      next.fingerprint,
      '--root-file',
      nextRoot,
      '--vouched-by',
      'host pve1 ca-hook 103',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const status = (...extra: string[]) =>
      runAgent(['status', '--config', join(dir, 'config.yaml'), ...extra], { env: {} });
    const doc = JSON.parse((await status('--json')).stdout) as { ca: { lastRepin: unknown } };
    expect(doc.ca.lastRepin).toMatchObject({
      from: [ca.fingerprint],
      to: [next.fingerprint],
      vouchedBy: 'host pve1 ca-hook 103',
    });
    const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
    (addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
    expect(ajv.validate(schema, doc), JSON.stringify(ajv.errors)).toBe(true);
    expect((await status()).stdout).toMatch(
      new RegExp(
        `last re-pin +\\S+ \\(.*\\) ${ca.fingerprint} -> ${next.fingerprint}, vouched by host pve1 ca-hook 103`,
      ),
    );
  });

  describe('--challenge dns', () => {
    const tsig = (dir: string, ...extra: string[]) => [
      '--challenge',
      'dns',
      '--dns-server',
      '[fd00::53]:5353',
      '--tsig-name',
      'cert-agent',
      '--tsig-secret-file',
      join(dir, 'tsig.secret'),
      ...extra,
    ];

    it('writes the dns section with a wildcard, and says where the challenge goes', async () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'tsig.secret'), 'c2VjcmV0\n', { mode: 0o600 });
      const r = await enroll(dir, [...tsig(dir, '--tsig-algorithm', 'hmac-sha512'), '--domain', '*.app.internal']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('challenge: dns on [fd00::53]:5353 (TSIG key cert-agent)');
      const config = parse(readFileSync(join(dir, 'config.yaml'), 'utf8'));
      expect(config.certificates[0].domains).toEqual(['app.internal', '*.app.internal']);
      expect(config.challenge).toEqual({
        mode: 'dns',
        dns: {
          server: '[fd00::53]:5353',
          tsig: { name: 'cert-agent', algorithm: 'hmac-sha512', secretFile: join(dir, 'tsig.secret') },
        },
      });
      const hook = tempDir();
      const viaEnv = await enroll(hook, ['--challenge', 'dns'], {
        CERT_AGENT_DNS_COMMAND: '["/usr/local/bin/dns-hook"]',
        CERT_AGENT_DNS_PROPAGATION_TIMEOUT: '300',
      });
      expect(viaEnv.code).toBe(0);
      expect(viaEnv.stdout).toContain('challenge: dns on command ["/usr/local/bin/dns-hook"]');
      expect(parse(readFileSync(join(hook, 'config.yaml'), 'utf8')).challenge.dns).toEqual({
        command: ['/usr/local/bin/dns-hook'],
        propagationTimeout: 300,
      });
    });

    it.each([
      [
        ['--dns-server', 'ns1.internal'],
        /^cert-agent: --dns-server \(CERT_AGENT_DNS_SERVER\): "ns1.internal" must be an IP .*not a host name/,
      ],
      [
        ['--tsig-algorithm', 'hmac-md5'],
        /^cert-agent: --tsig-algorithm \(CERT_AGENT_TSIG_ALGORITHM\): "hmac-md5" is not allowed/,
      ],
      [['--dns-propagation-timeout', '2'], /^cert-agent: --dns-propagation-timeout .*from 5 to 3600, got 2\n$/],
      [
        ['--dns-command', 'hook'],
        /^cert-agent: --dns-command \(CERT_AGENT_DNS_COMMAND\): cannot be given together with tsig/,
      ],
      [['--dns-zone', 'bad_zone!'], /^cert-agent: --dns-zone \(CERT_AGENT_DNS_ZONE\): "bad_zone!" is not a DNS name/],
    ])('%o is a usage error (64), nothing written', async (extra, message) => {
      const dir = tempDir();
      writeFileSync(join(dir, 'tsig.secret'), 'x', { mode: 0o600 });
      const r = await enroll(dir, [...tsig(dir), ...extra]);
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim()).not.toContain('\n');
      expect(existsSync(join(dir, 'config.yaml'))).toBe(false);
    });

    it('a secret file open to others, a mode dns without a way to publish, a wildcard without dns: 64', async () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'tsig.secret'), 'c2VjcmV0\n', { mode: 0o600 });
      chmodSync(join(dir, 'tsig.secret'), 0o644);
      const open = await enroll(dir, tsig(dir));
      expect(open.code).toBe(64);
      expect(open.stderr).toMatch(
        /^cert-agent: --tsig-secret-file \(CERT_AGENT_TSIG_SECRET_FILE\): \S+tsig\.secret is readable by group or others \(mode 0644\)/,
      );
      expect(open.stderr).not.toContain('c2VjcmV0');
      const none = await enroll(dir, ['--challenge', 'dns']);
      expect(none.code).toBe(64);
      expect(none.stderr).toMatch(
        /^cert-agent: --challenge \(CERT_AGENT_CHALLENGE\): challenge\.dns mode dns needs server and tsig/,
      );
      const wildcard = await enroll(dir, ['--domain', '*.app.internal']);
      expect(wildcard.code).toBe(64);
      expect(wildcard.stderr).toMatch(
        /^cert-agent: --domain \(CERT_AGENT_DOMAINS\): \*\.app\.internal is a wildcard, .*set challenge\.mode: dns\n$/,
      );
      expect(existsSync(join(dir, 'config.yaml'))).toBe(false);
    });
  });
});
