/**
 * The certificates of one agent: the short form of 0.1.0 (one certificate,
 * named `default`, every view as before) and the `certificates:` list, each
 * entry with its own directory and name; and the rules that keep them apart,
 * every error naming the entry it is about. Wildcards: only for a
 * certificate whose own challenge is dns-01.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig, validateConfig } from '../../../agent/config/config.js';
import { ConfigError, ExitCode } from '../../../agent/lib/errors.js';

const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const CA = { url: 'https://ca.internal:9000', fingerprint: FP };

function errorOf(doc: unknown): ConfigError {
  try {
    validateConfig(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** A 0.1.0 configuration with every field given, as an operator's file of that release. */
const RELEASE_0_1_0 = `
ca:
  url: https://ca.internal:9000/
  fingerprint: ${FP}
  provisioner: acme-lxc
account:
  email: ops@example.internal
certificate:
  domains: [App.internal, 10.0.0.5]
  keyType: rsa-2048
  dir: /srv/tls
  owner: www-data
  group: ssl-cert
renewal:
  at: 0.5
  jitter: 0.1
  check: "*/10 * * * *"
  orderTimeout: 120
  minAllowance: 6h
challenge:
  mode: proxy
  webroot: /srv/acme
reload:
  target: traefik
  timeout: 20
  verify: 127.0.0.1:443
  traefik:
    dynamicFile: /etc/traefik/conf.d/tls.yml
    entryPoint: http
  nginx:
    binary: /usr/sbin/nginx
trust:
  installSystem: true
permissions:
  onDrift: report
metrics:
  textfile: /var/lib/node_exporter/cert-agent.prom
stateDir: /srv/state
`;

describe('the short form of 0.1.0', () => {
  it('loads unchanged: every view as 0.1.0 gave it, plus the name default, as a list of one', () => {
    const config = parseConfig(RELEASE_0_1_0);
    const view = {
      ca: {
        url: 'https://ca.internal:9000',
        fingerprints: [FP],
        provisioner: 'acme-lxc',
        directory: 'https://ca.internal:9000/acme/acme-lxc/directory',
      },
      account: { email: 'ops@example.internal' },
      certificate: {
        name: 'default',
        domains: ['app.internal', '10.0.0.5'],
        keyType: 'rsa-2048',
        dir: '/srv/tls',
        owner: 'www-data',
        group: 'ssl-cert',
      },
      renewal: {
        at: 0.5,
        jitter: 0.1,
        check: '*/10 * * * *',
        orderTimeoutSeconds: 120,
        method: 'auto',
        minAllowance: { seconds: 21600 },
      },
      challenge: { mode: 'proxy', listen: '127.0.0.1:8402', webroot: '/srv/acme' },
      reload: {
        target: 'traefik',
        timeoutSeconds: 20,
        traefik: { dynamicFile: '/etc/traefik/conf.d/tls.yml', entryPoint: 'http' },
        nginx: { binary: '/usr/sbin/nginx' },
        verify: '127.0.0.1:443',
      },
      trust: { installSystem: true },
      permissions: { onDrift: 'report' },
      metrics: { textfile: '/var/lib/node_exporter/cert-agent.prom' },
      stateDir: '/srv/state',
    };
    const { certificates, ...first } = config;
    expect(first).toEqual(view);
    expect(certificates).toEqual([view]);
  });

  it('a minimal short form keeps 0.1.0 defaults: /etc/cert-agent/tls, the shared Traefik file', () => {
    const config = validateConfig({ ca: CA, certificate: { domains: ['a.internal'] }, reload: { target: 'traefik' } });
    expect(config.certificates).toHaveLength(1);
    expect(config.certificate.dir).toBe('/etc/cert-agent/tls');
    expect(config.reload.traefik).toEqual({ dynamicFile: '/etc/traefik/dynamic/cert-agent.yml', entryPoint: 'web' });
  });

  it('may carry a name of its own, and refuses a bad one naming the field', () => {
    expect(validateConfig({ ca: CA, certificate: { name: 'web', domains: ['a.internal'] } }).certificate.name).toBe(
      'web',
    );
    const err = errorOf({ ca: CA, certificate: { name: 'Web/..', domains: ['a.internal'] } });
    expect(err.field).toBe('certificate.name');
    expect(err.message).toMatch(/not a certificate name/);
  });

  it('refuses both forms at once, and neither', () => {
    const both = errorOf({ ca: CA, certificate: { domains: ['a.internal'] }, certificates: [{ name: 'b' }] });
    expect(both.field).toBe('certificates');
    expect(both.message).toMatch(/not both/);
    expect(errorOf({ ca: CA, certificates: [] }).message).toMatch(/certificates: is required/);
  });
});

describe('the list form', () => {
  it('gives each entry its own view, in the file order, the first also the top-level view', () => {
    const config = validateConfig({
      ca: CA,
      certificates: [
        { name: 'default', domains: ['a.internal'] },
        { name: 'grafana', domains: ['grafana.internal'], keyType: 'ec-p384', owner: 'grafana' },
      ],
    });
    expect(config.certificates.map((c) => c.certificate)).toEqual([
      {
        name: 'default',
        domains: ['a.internal'],
        keyType: 'ec-p256',
        dir: '/etc/cert-agent/tls',
        owner: 'root',
        group: 'root',
      },
      {
        name: 'grafana',
        domains: ['grafana.internal'],
        keyType: 'ec-p384',
        dir: '/etc/cert-agent/certs/grafana',
        owner: 'grafana',
        group: 'root',
      },
    ]);
    expect(config.certificate).toEqual(config.certificates[0]!.certificate);
    // What they share is the same in every view.
    expect(config.certificates[1]!.ca).toEqual(config.ca);
    expect(config.certificates[1]!.stateDir).toBe('/var/lib/cert-agent');
  });

  it.each([
    ['a name missing', [{ domains: ['a.internal'] }], 'certificates[0].name', /is required/],
    [
      'a name with a slash',
      [{ name: 'a/b', domains: ['a.internal'] }],
      'certificates[0].name',
      /not a certificate name/,
    ],
    [
      'an upper-case name',
      [{ name: 'Web', domains: ['a.internal'] }],
      'certificates[0].name',
      /not a certificate name/,
    ],
    [
      'a name of 64 characters',
      [{ name: 'a'.repeat(64), domains: ['a.internal'] }],
      'certificates[0].name',
      /not a certificate name/,
    ],
    [
      'no domains in the second',
      [
        { name: 'a', domains: ['a.internal'] },
        { name: 'b', domains: [] },
      ],
      'certificates[1] (b).domains',
      /at least one/,
    ],
    [
      'a domain twice',
      [{ name: 'a', domains: ['a.internal', 'A.internal'] }],
      'certificates[0] (a).domains',
      /listed twice/,
    ],
    [
      'a relative dir',
      [{ name: 'a', domains: ['a.internal'], dir: 'tls' }],
      'certificates[0] (a).dir',
      /absolute path/,
    ],
    [
      'an unknown field',
      [{ name: 'a', domains: ['a.internal'], renewal: { at: 0.5 } }],
      'certificates[0] (a).renewal',
      /unknown field/,
    ],
    [
      'an unknown challenge field',
      [{ name: 'a', domains: ['a.internal'], challenge: { port: 80 } }],
      'certificates[0] (a).challenge.port',
      /unknown field/,
    ],
    [
      'a shared reload field in an entry',
      [{ name: 'a', domains: ['a.internal'], reload: { timeout: 5 } }],
      'certificates[0] (a).reload.timeout',
      /unknown field/,
    ],
    [
      'an entry that is not a mapping',
      [{ name: 'a', domains: ['a.internal'] }, 'b'],
      'certificates[1]',
      /must be a mapping/,
    ],
  ])('%s is refused, naming the entry', (_what, certificates, field, message) => {
    const err = errorOf({ ca: CA, certificates });
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('an empty challenge or reload section in an entry is the shared one, as at the top level', () => {
    const config = parseConfig(
      `ca: {url: "https://ca.internal:9000", fingerprint: "${FP}"}\nchallenge:\n  mode: webroot\n` +
        'certificates:\n  - name: a\n    domains: [a.internal]\n    challenge:\n    reload:\n',
    );
    expect(config.certificates[0]!.challenge.mode).toBe('webroot');
    expect(config.certificates[0]!.reload.target).toBe('none');
  });
});

describe('checkDistinct: names, directories and Traefik files of their own', () => {
  const two = (a: Record<string, unknown>, b: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    ca: CA,
    ...extra,
    certificates: [
      { name: 'a', domains: ['a.internal'], ...a },
      { name: 'b', domains: ['b.internal'], ...b },
    ],
  });

  it('refuses the same name twice', () => {
    const err = errorOf(two({}, { name: 'a' }));
    expect(err.field).toBe('certificates[1] (a).name');
    expect(err.message).toMatch(/"a" is already the name of certificates\[0\]; names must be unique/);
  });

  it.each([
    ['the same dir', '/srv/tls', '/srv/tls'],
    ['the same dir with a trailing slash', '/srv/tls', '/srv/tls/'],
    ['a dir inside the other', '/srv/tls', '/srv/tls/b'],
    ['a dir around the other', '/srv/tls/a', '/srv/tls'],
    ['the same dir written with a dot', '/srv/tls/a', '/srv/tls/./a'],
    ['the same dir written with a double slash', '/srv/tls/a', '/srv//tls/a'],
    ['a dir inside the other through ..', '/srv/tls', '/srv/other/../tls/b'],
  ])('refuses %s, naming the second entry and the first', (_what, dirA, dirB) => {
    const err = errorOf(two({ dir: dirA }, { dir: dirB }));
    expect(err.field).toBe('certificates[1] (b).dir');
    expect(err.message).toMatch(/overlaps the directory of certificates\[0\] \(a\)/);
  });

  it('takes two directories that only share a prefix of a name', () => {
    expect(validateConfig(two({ dir: '/srv/tls' }, { dir: '/srv/tls2' })).certificates).toHaveLength(2);
  });

  it.each([
    ['the state directory itself', '/var/lib/cert-agent'],
    ['a directory inside it', '/var/lib/cert-agent/tls'],
    ['a directory around it', '/var/lib'],
    ['a directory inside it written with ..', '/var/lib/x/../cert-agent/tls'],
  ])('refuses a dir that overlaps stateDir: %s', (_what, dir) => {
    const err = errorOf(two({}, { dir }));
    expect(err.field).toBe('certificates[1] (b).dir');
    expect(err.message).toMatch(/overlaps stateDir "\/var\/lib\/cert-agent"/);
  });

  it('names the short form as the file does when its dir overlaps stateDir', () => {
    const err = errorOf({
      ca: CA,
      certificate: { domains: ['a.internal'], dir: '/srv/state/tls' },
      stateDir: '/srv/state',
    });
    expect(err.field).toBe('certificate.dir');
    expect(err.message).toMatch(/overlaps stateDir "\/srv\/state"/);
  });

  it('refuses the same Traefik dynamic file for two Traefik certificates, not for other targets', () => {
    const file = '/etc/traefik/dynamic/tls.yml';
    const traefik = (dynamicFile: string) => ({ reload: { target: 'traefik', traefik: { dynamicFile } } });
    const err = errorOf(two(traefik(file), traefik(file)));
    expect(err.field).toBe('certificates[1] (b).reload.traefik.dynamicFile');
    expect(err.message).toMatch(/is also the dynamic file of certificates\[0\] \(a\)/);
    const spelled = errorOf(two(traefik(file), traefik('/etc/traefik//dynamic/tls.yml')));
    expect(spelled.field).toBe('certificates[1] (b).reload.traefik.dynamicFile');
    const command = { reload: { target: 'command', command: ['true'], traefik: { dynamicFile: file } } };
    expect(validateConfig(two(traefik(file), command)).certificates).toHaveLength(2);
  });
});

describe('checkDistinct: Traefik proxy challenges', () => {
  it('refuses two proxied Traefik certificates with different listeners, naming the entry', () => {
    const doc = (listen: string) => ({
      ca: { url: 'https://ca.internal:9000', fingerprint: 'a'.repeat(64) },
      reload: { target: 'traefik' },
      challenge: { mode: 'proxy' },
      certificates: [
        { name: 'a', domains: ['a.internal'], dir: '/etc/cert-agent/certs/a' },
        { name: 'b', domains: ['b.internal'], dir: '/etc/cert-agent/certs/b', challenge: { listen } },
      ],
    });
    expect(() => validateConfig(doc('127.0.0.1:8402'))).not.toThrow();
    expect(() => validateConfig(doc('127.0.0.1:8403'))).toThrow(
      /^config: certificates\[1\] \(b\)\.challenge\.listen: "127\.0\.0\.1:8403" differs from certificates\[0\] \(a\)'s "127\.0\.0\.1:8402"/,
    );
  });
});

describe('wildcards: only over dns-01, per certificate', () => {
  const DNS = { mode: 'dns', dns: { command: ['/usr/local/bin/dns-hook'] } };
  const web = (domains: string[], challenge?: object) => ({
    name: 'web',
    domains,
    ...(challenge ? { challenge } : {}),
  });

  it('accepted where the certificate proves names over dns-01, shared or its own, beside an http-01 one', () => {
    const shared = validateConfig({
      ca: CA,
      challenge: DNS,
      certificate: { domains: ['*.App.internal', 'app.internal'] },
    });
    expect(shared.certificate.domains).toEqual(['*.app.internal', 'app.internal']);
    const mixed = validateConfig({
      ca: CA,
      certificates: [{ name: 'plain', domains: ['plain.internal'] }, web(['*.app.internal', 'app.internal'], DNS)],
    });
    expect(mixed.certificates.map((c) => [c.challenge.mode, c.certificate.domains])).toEqual([
      ['standalone', ['plain.internal']],
      ['dns', ['*.app.internal', 'app.internal']],
    ]);
  });

  it('refused over http-01, in one line naming the entry and what to set (exit 78)', () => {
    const err = errorOf({ ca: CA, certificates: [web(['app.internal', '*.app.internal'])] });
    expect(err.exitCode).toBe(ExitCode.config);
    expect(err.message).toBe(
      'config: certificates[0] (web).domains: *.app.internal is a wildcard, and a wildcard can only be proven over dns-01: set challenge.mode: dns',
    );
    // The shared section says dns, this entry's own says otherwise.
    const own = errorOf({ ca: CA, challenge: DNS, certificates: [web(['*.app.internal'], { mode: 'webroot' })] });
    expect(own.field).toBe('certificates[0] (web).domains');
    expect(errorOf({ ca: CA, certificate: { domains: ['*.app.internal'] } }).field).toBe('certificate.domains');
  });

  it('an IP address over dns-01 is refused at load (78), not at every pass by the CA', () => {
    const err = errorOf({ ca: CA, certificates: [web(['app.internal', '10.0.0.5'], DNS)] });
    expect(err.exitCode).toBe(ExitCode.config);
    expect(err.message).toBe(
      'config: certificates[0] (web).domains: 10.0.0.5 is an IP address, which dns-01 cannot prove: give it a certificate of its own over http-01 (a certificates: entry)',
    );
    // Beside it, an entry over http-01 may carry the address.
    const mixed = validateConfig({
      ca: CA,
      challenge: DNS,
      certificates: [web(['app.internal']), { name: 'ip', domains: ['10.0.0.5'], challenge: { mode: 'standalone' } }],
    });
    expect(mixed.certificates.map((c) => c.challenge.mode)).toEqual(['dns', 'standalone']);
  });

  it.each([
    ['*.internal', /is a wildcard over a top-level name/],
    ['*.10.0.0.1', /is a wildcard over an IP address/],
    ['*.*.app.internal', /is not a valid DNS name, wildcard/],
    ['app.*.internal', /is not a valid DNS name, wildcard/],
    ['*app.internal', /is not a valid DNS name, wildcard/],
    ['*', /is not a valid DNS name, wildcard/],
  ])('%s is not a wildcard a certificate can carry', (domain, message) => {
    const err = errorOf({ ca: CA, challenge: DNS, certificates: [web([domain])] });
    expect(err.field).toBe('certificates[0] (web).domains[0]');
    expect(err.message).toMatch(message);
  });

  it('the same wildcard twice is a duplicate, as any name', () => {
    const err = errorOf({ ca: CA, challenge: DNS, certificates: [web(['*.app.internal', '*.APP.internal'])] });
    expect(err.message).toMatch(/"\*\.app\.internal" is listed twice/);
  });
});
