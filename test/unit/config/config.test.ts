/**
 * Config validation: a minimal file gets every default, and each kind of
 * mistake is a ConfigError (exit 78) naming the field and what is allowed.
 */
import { chmodSync, chownSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, validateConfig } from '../../../agent/config/config.js';
import { ConfigError, ExitCode } from '../../../agent/lib/errors.js';
import { tempDir } from '../../helpers/agent.js';

const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const base = () =>
  ({ ca: { url: 'https://ca.internal:9000', fingerprint: FP }, certificate: { domains: ['app.internal'] } }) as Record<
    string,
    any
  >;

function errorOf(doc: unknown): ConfigError {
  try {
    validateConfig(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function withField(path: string, value: unknown): Record<string, any> {
  const doc = base();
  const keys = path.split('.');
  let obj = doc;
  for (const k of keys.slice(0, -1)) obj = obj[k] ??= {};
  obj[keys.at(-1)!] = value;
  return doc;
}

describe('validateConfig: defaults', () => {
  it('fills in every default from a minimal document', () => {
    const c = validateConfig(base());
    expect(c.ca).toEqual({
      url: 'https://ca.internal:9000',
      fingerprints: [FP],
      provisioner: 'acme',
      directory: 'https://ca.internal:9000/acme/acme/directory',
    });
    expect(c.certificate).toEqual({
      name: 'default',
      domains: ['app.internal'],
      keyType: 'ec-p256',
      dir: '/etc/cert-agent/tls',
      owner: 'root',
      group: 'root',
    });
    expect(c.renewal).toEqual({
      at: 0.66,
      jitter: 0.05,
      check: '*/5 * * * *',
      orderTimeoutSeconds: 600,
      method: 'auto',
      minAllowance: { share: 0.25 },
    });
    expect(c.challenge).toEqual({ mode: 'standalone', listen: '0.0.0.0:80', webroot: '/var/www/acme-challenge' });
    expect(c.reload.target).toBe('none');
    expect(c.stateDir).toBe('/var/lib/cert-agent');
  });
  it('normalises pins and names, strips a trailing slash, and gives proxy mode its own listener', () => {
    const c = validateConfig({
      ...withField('challenge', { mode: 'proxy' }),
      ca: {
        url: 'https://ca.internal:9000/',
        fingerprint: [FP.toUpperCase().match(/../g)!.join(':'), FP.replace(/^4/, '5')],
      },
      certificate: { domains: ['App.Internal', '10.0.0.5', '::1'] },
    });
    expect(c.ca.url).toBe('https://ca.internal:9000');
    expect(c.ca.fingerprints).toEqual([FP, FP.replace(/^4/, '5')]);
    expect(c.certificate.domains).toEqual(['app.internal', '10.0.0.5', '::1']);
    expect(c.challenge.listen).toBe('127.0.0.1:8402');
  });
  it('accepts JSON as well as YAML', () => {
    expect(parseConfig(JSON.stringify(base())).certificate.domains).toEqual(['app.internal']);
    expect(
      parseConfig(
        `ca:\n  url: https://ca.internal:9000\n  fingerprint: ${FP}\ncertificate:\n  domains: [app.internal]\n`,
      ).ca.fingerprints,
    ).toEqual([FP]);
  });
  it('accepts metrics.textfile as an absolute .prom path', () => {
    expect(
      validateConfig(withField('metrics.textfile', '/var/lib/node_exporter/textfile/cert-agent.prom')).metrics,
    ).toEqual({ textfile: '/var/lib/node_exporter/textfile/cert-agent.prom' });
    expect(validateConfig(base()).metrics).toEqual({});
  });
});

describe('validateConfig: each mistake names its field', () => {
  const cases: [string, Record<string, any>, string, RegExp][] = [
    ['no domains', withField('certificate.domains', []), 'certificate.domains', /at least one/],
    ['no certificate at all', { ca: base().ca }, 'certificates', /is required/],
    ['domains missing', { ca: base().ca, certificate: {} }, 'certificate.domains', /is required/],
    ['a wildcard domain', withField('certificate.domains', ['*.app.internal']), 'certificate.domains', /wildcard/],
    [
      'an invalid DNS name',
      withField('certificate.domains', ['app.internal', 'bad_name!']),
      'certificate.domains[1]',
      /not a valid DNS name/,
    ],
    [
      'an IPv4-mapped IPv6 address',
      withField('certificate.domains', ['app.internal', '::ffff:10.1.2.3']),
      'certificate.domains[1]',
      /IPv4-mapped IPv6 address; .*list the IPv4 form 10\.1\.2\.3$/,
    ],
    [
      'an IPv4-mapped IPv6 address in hex',
      withField('certificate.domains', ['::FFFF:a01:203']),
      'certificate.domains[0]',
      /IPv4-mapped .*IPv4 form 10\.1\.2\.3$/,
    ],
    [
      'a domain listed twice',
      withField('certificate.domains', ['a.internal', 'A.internal']),
      'certificate.domains',
      /listed twice/,
    ],
    [
      'an unknown key type',
      withField('certificate.keyType', 'ed25519'),
      'certificate.keyType',
      /not allowed; use one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096/,
    ],
    ['a malformed CA URL', withField('ca.url', 'ca.internal:9000'), 'ca.url', /https/],
    ['an http CA URL', withField('ca.url', 'http://ca.internal:9000'), 'ca.url', /must use https/],
    ['a CA URL with credentials', withField('ca.url', 'https://u:p@ca.internal'), 'ca.url', /credentials/],
    [
      'a bad fingerprint',
      withField('ca.fingerprint', 'abc123'),
      'ca.fingerprint[0]',
      /has 6 hex digits; a SHA-256 fingerprint has 64/,
    ],
    ['no fingerprint and no rootFile', withField('ca.fingerprint', undefined), 'ca.fingerprint', /is required/],
    ['a relative rootFile', withField('ca.rootFile', 'root.pem'), 'ca.rootFile', /absolute path/],
    [
      'an unknown top-level field',
      withField('renewl', { at: 0.5 }),
      'renewl',
      /unknown field; known fields here: .*renewal/,
    ],
    ['an unknown nested field', withField('certificate.domian', ['x']), 'certificate.domian', /unknown field/],
    ['a bad cron', withField('renewal.check', 'every five minutes'), 'renewal.check', /not a valid cron expression/],
    ['renewal.at out of range', withField('renewal.at', 1.5), 'renewal.at', /from 0.1 to 0.95, got 1.5/],
    [
      'an order timeout under 10 s',
      withField('renewal.orderTimeout', 5),
      'renewal.orderTimeout',
      /from 10 to 3600, got 5/,
    ],
    ['renewal.at as a string', withField('renewal.at', '0.5'), 'renewal.at', /must be a number/],
    [
      'jitter not smaller than at',
      withField('renewal', { at: 0.2, jitter: 0.25 }),
      'renewal.jitter',
      /smaller than renewal.at/,
    ],
    [
      'an unknown challenge mode',
      withField('challenge.mode', 'tls-alpn'),
      'challenge.mode',
      /use one of standalone, webroot, proxy/,
    ],
    ['a listen address without a port', withField('challenge.listen', '0.0.0.0'), 'challenge.listen', /host:port/],
    ['a listen port out of range', withField('challenge.listen', ':70000'), 'challenge.listen', /port from 1 to 65535/],
    ['a bad IPv6 listen address', withField('challenge.listen', '[1::2::3]:80'), 'challenge.listen', /IPv6/],
    ['a relative webroot', withField('challenge.webroot', 'www'), 'challenge.webroot', /absolute path/],
    [
      'an unknown reload target',
      withField('reload.target', 'apache'),
      'reload.target',
      /use one of nginx, traefik, command, none/,
    ],
    [
      'reload command missing',
      withField('reload.target', 'command'),
      'reload.command',
      /is required when reload.target is command/,
    ],
    [
      'reload command as one string',
      withField('reload', { target: 'command', command: 'systemctl reload haproxy' }),
      'reload.command',
      /must be a list of strings/,
    ],
    ['a bad verify address', withField('reload.verify', 'localhost'), 'reload.verify', /host:port/],
    ['a bad owner', withField('certificate.owner', 'no body'), 'certificate.owner', /not a user or group name/],
    ['a relative stateDir', withField('stateDir', 'state'), 'stateDir', /absolute path/],
    ['a section that is not a mapping', withField('renewal', 'soon'), 'renewal', /must be a mapping/],
    ['installSystem not a boolean', withField('trust.installSystem', 'yes'), 'trust.installSystem', /true or false/],
    [
      'a relative metrics.textfile',
      withField('metrics.textfile', 'cert-agent.prom'),
      'metrics.textfile',
      /absolute path/,
    ],
    [
      'a metrics.textfile node_exporter would ignore',
      withField('metrics.textfile', '/var/lib/node_exporter/cert-agent.txt'),
      'metrics.textfile',
      /\.prom/,
    ],
    ['an unknown metrics field', withField('metrics.port', 9100), 'metrics.port', /unknown field/],
  ];
  it.each(cases)('%s', (_what, doc, field, message) => {
    const err = errorOf(doc);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
    expect(err.message.startsWith(`config: ${field}: `)).toBe(true);
    expect(err.message).not.toContain('\n');
    expect(err.exitCode).toBe(ExitCode.config);
  });

  it('refuses a document that is not a mapping, and duplicate keys', () => {
    expect(errorOf(['a']).message).toMatch(/must be a mapping of fields/);
    expect(() => parseConfig('ca: {}\nca: {}\n')).toThrow(ConfigError);
    expect(() => parseConfig('ca: [unclosed')).toThrow(/not valid YAML or JSON/);
  });

  it('names the file when it cannot be read, and hints at enroll', () => {
    const dir = tempDir('cert-agent-config-');
    try {
      expect(() => loadConfig(join(dir, 'missing.yaml'))).toThrow(
        /cannot read .*missing\.yaml: ENOENT \(run `cert-agent enroll` to create it\)/,
      );
      writeFileSync(join(dir, 'c.yaml'), JSON.stringify(base()));
      expect(loadConfig(join(dir, 'c.yaml')).certificate.domains).toEqual(['app.internal']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const asRoot = process.getuid?.() === 0;
  it.runIf(asRoot)('refuses, like sshd StrictModes, a config that a user other than root could change', () => {
    const dir = tempDir('cert-agent-config-');
    const load = (file: string) => () => loadConfig(file);
    try {
      const file = join(dir, 'c.yaml');
      writeFileSync(file, JSON.stringify(base()), { mode: 0o600 });
      expect(loadConfig(file).certificate.domains).toEqual(['app.internal']);
      chmodSync(file, 0o620);
      expect(load(file)).toThrow(
        /^config: "[^"]*c\.yaml" is owned by uid 0 with mode 0620, writable by group or others; /,
      );
      expect(load(file)).toThrow(/: chmod go-w \S*c\.yaml$/);
      chmodSync(file, 0o600);
      chownSync(file, 65534, 65534);
      expect(load(file)).toThrow(
        /is owned by uid 65534 with mode 0600; .*must be owned by root .*: chown root \S*c\.yaml$/,
      );
      chownSync(file, 0, 0);
      // A parent directory: group-writable, then owned by another user, then sticky and world-writable like /tmp.
      const sub = join(dir, 'sub');
      mkdirSync(sub);
      const inner = join(sub, 'c.yaml');
      writeFileSync(inner, JSON.stringify(base()), { mode: 0o600 });
      expect(loadConfig(inner).certificate.domains).toEqual(['app.internal']);
      for (const [mode, uid, message] of [
        [0o775, 0, /lies under \S*sub, which is owned by uid 0 with mode 0775.*chmod go-w \S*sub or move the file/],
        [0o755, 65534, /lies under \S*sub, which is owned by uid 65534 with mode 0755;.*chown root \S*sub or move/],
        [0o1777, 0, /lies under \S*sub, which is owned by uid 0 with mode 1777/],
      ] as const) {
        chmodSync(sub, mode);
        chownSync(sub, uid, uid);
        expect(load(inner)).toThrow(message);
        try {
          loadConfig(inner);
        } catch (err) {
          expect((err as ConfigError).exitCode).toBe(ExitCode.config);
          expect((err as Error).message).not.toContain('\n');
        }
      }
      chmodSync(sub, 0o755);
      chownSync(sub, 0, 0);
      expect(loadConfig(inner).certificate.domains).toEqual(['app.internal']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(asRoot)(
    "checks the TSIG secret file at load: root's regular file, 0600 or 0400, in root's directories",
    () => {
      const dir = tempDir('cert-agent-config-');
      const keys = join(dir, 'keys');
      const secret = join(keys, 'tsig.secret');
      const file = join(dir, 'c.yaml');
      const dns = (secretFile: string) => ({
        mode: 'dns',
        dns: { server: '10.0.0.53', tsig: { name: 'cert-agent', secretFile } },
      });
      const refusal = (secretFile = secret): string => {
        writeFileSync(file, JSON.stringify({ ...base(), challenge: dns(secretFile) }), { mode: 0o600 });
        try {
          loadConfig(file);
        } catch (err) {
          expect((err as ConfigError).exitCode).toBe(ExitCode.config);
          expect((err as ConfigError).field).toBe('challenge.dns.tsig.secretFile');
          expect((err as Error).message).not.toContain('\n');
          return (err as Error).message;
        }
        return 'loaded';
      };
      try {
        mkdirSync(keys, { mode: 0o700 });
        expect(refusal()).toMatch(/tsig\.secret does not exist .*owned by root, mode 0600$/);
        writeFileSync(secret, 'c2VjcmV0\n', { mode: 0o600 });
        expect(refusal()).toBe('loaded');
        chmodSync(secret, 0o400);
        expect(refusal()).toBe('loaded');
        chmodSync(secret, 0o644);
        expect(refusal()).toBe(
          `config: challenge.dns.tsig.secretFile: ${secret} is readable by group or others (mode 0644): the TSIG key must be root's alone (chmod 600)`,
        );
        // Secret content never appears in a message.
        expect(refusal()).not.toContain('c2VjcmV0');
        chmodSync(secret, 0o620);
        expect(refusal()).toMatch(/is writable by group or others \(mode 0620\).*\(chmod 600\)$/);
        chmodSync(secret, 0o600);
        chownSync(secret, 65534, 65534);
        expect(refusal()).toMatch(/is owned by uid 65534: the TSIG key must be root's alone \(chown root\)$/);
        chownSync(secret, 0, 0);
        const link = join(dir, 'link.secret');
        symlinkSync(secret, link);
        expect(refusal(link)).toMatch(/link\.secret is a symlink: name the file itself/);
        expect(refusal(keys)).toMatch(/keys is not a regular file/);
        chmodSync(keys, 0o770);
        expect(refusal()).toMatch(
          /lies under \S*keys, which is owned by uid 0 with mode 0770; .*: chmod go-w \S*keys$/,
        );
        chmodSync(keys, 0o700);
        chownSync(keys, 65534, 65534);
        expect(refusal()).toMatch(/lies under \S*keys, which is owned by uid 65534 .*: chown root \S*keys$/);
        chownSync(keys, 0, 0);
        // Through a link to the directory: the link's target is checked as well.
        const other = join(dir, 'other');
        mkdirSync(other, { mode: 0o777 });
        chmodSync(other, 0o777);
        writeFileSync(join(other, 'tsig.secret'), 'x', { mode: 0o600 });
        symlinkSync(other, join(dir, 'via'));
        expect(refusal(join(dir, 'via', 'tsig.secret'))).toMatch(
          /lies under \S*other, which is owned by uid 0 with mode 0777/,
        );
        expect(refusal()).toBe('loaded');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
