/**
 * What `enroll` writes when the operator leaves a choice open: the challenge
 * mode and reload.verify follow the reload target (nginx and Traefik own
 * port 80 and serve TLS on 443), and --reload-command takes an argv, never
 * a shell line. Run through the bundle with a root file, so no CA is needed.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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
});
