/**
 * The challenge and reload sections of a `certificates:` entry: each field
 * given overrides the shared section for that certificate alone; a target of
 * its own brings no shared command or verify address with it; a Traefik
 * certificate other than `default` writes a dynamic file of its own beside
 * the shared one; and only the first Traefik certificate is the default
 * certificate of Traefik's TLS store. challenge.dns: its fields, formats and
 * rules, shared or an entry's own (mixed http-01 and dns-01 certificates).
 */
import { describe, expect, it } from 'vitest';
import { validateConfig, type AgentConfig } from '../../../agent/config/config.js';
import { ConfigError, ExitCode } from '../../../agent/lib/errors.js';

const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const CA = { url: 'https://ca.internal:9000', fingerprint: FP };

/** The shared sections, then entries a, b, ... with the fields given. */
function load(shared: Record<string, unknown>, ...entries: Record<string, unknown>[]): AgentConfig {
  const certificates = entries.map((e, i) => ({ name: 'abcdef'[i], domains: [`${'abcdef'[i]}.internal`], ...e }));
  return validateConfig({ ca: CA, ...shared, certificates });
}

describe('challenge overrides', () => {
  it('an entry without a challenge section has the shared one', () => {
    const shared = { challenge: { mode: 'webroot', webroot: '/srv/acme' } };
    const config = load(shared, {});
    expect(config.certificates[0]!.challenge).toEqual({ mode: 'webroot', listen: '0.0.0.0:80', webroot: '/srv/acme' });
  });

  it('an entry overrides field by field; the shared listen address only stays for the same mode', () => {
    const shared = { challenge: { mode: 'proxy', listen: '127.0.0.1:9402', webroot: '/srv/acme' } };
    const config = load(
      shared,
      { challenge: { webroot: '/srv/other' } },
      { challenge: { mode: 'standalone' } },
      { challenge: { mode: 'standalone', listen: '10.0.0.5:80' } },
    );
    expect(config.certificates.map((c) => c.challenge)).toEqual([
      { mode: 'proxy', listen: '127.0.0.1:9402', webroot: '/srv/other' },
      { mode: 'standalone', listen: '0.0.0.0:80', webroot: '/srv/acme' },
      { mode: 'standalone', listen: '10.0.0.5:80', webroot: '/srv/acme' },
    ]);
  });

  it('a bad mode in an entry is refused, naming the entry', () => {
    try {
      load({}, {}, { challenge: { mode: 'ftp' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe('certificates[1] (b).challenge.mode');
    }
  });
});

describe('reload overrides', () => {
  const shared = {
    reload: {
      target: 'command',
      command: ['systemctl', 'reload', 'haproxy'],
      verify: '127.0.0.1:443',
      timeout: 12,
      nginx: { binary: '/usr/sbin/nginx' },
    },
  };

  it('an entry without a reload section inherits target, command, verify and the rest', () => {
    const [a] = load(shared, {}).certificates;
    expect(a!.reload).toEqual({
      target: 'command',
      command: ['systemctl', 'reload', 'haproxy'],
      verify: '127.0.0.1:443',
      timeoutSeconds: 12,
      traefik: { dynamicFile: '/etc/traefik/dynamic/cert-agent-a.yml', entryPoint: 'web' },
      nginx: { binary: '/usr/sbin/nginx' },
    });
  });

  it('an entry that overrides only the command or only verify keeps the other', () => {
    const [a, b] = load(
      shared,
      { reload: { command: ['kill', '-HUP', '1'] } },
      { reload: { verify: '127.0.0.1:8443' } },
    ).certificates;
    expect(a!.reload).toMatchObject({ target: 'command', command: ['kill', '-HUP', '1'], verify: '127.0.0.1:443' });
    expect(b!.reload).toMatchObject({ target: 'command', command: shared.reload.command, verify: '127.0.0.1:8443' });
  });

  it('an entry setting reload.target does not inherit the shared command or verify', () => {
    const [a, b] = load(shared, { reload: { target: 'nginx' } }, { reload: { target: 'none' } }).certificates;
    expect(a!.reload.target).toBe('nginx');
    expect(a!.reload.command).toBeUndefined();
    expect(a!.reload.verify).toBeUndefined();
    expect(b!.reload).not.toHaveProperty('command');
    expect(b!.reload).not.toHaveProperty('verify');
    // What stays shared does.
    expect(a!.reload.timeoutSeconds).toBe(12);
    expect(a!.reload.nginx).toEqual({ binary: '/usr/sbin/nginx' });
  });

  it('an entry setting target command needs its own command, even when the shared target is command', () => {
    try {
      load(shared, {}, { reload: { target: 'command' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe('certificates[1] (b).reload.command');
      expect((err as Error).message).toMatch(/is required when reload.target is command/);
    }
  });

  it('an entry with target command and its own command and verify has exactly those', () => {
    const [a] = load({}, { reload: { target: 'command', command: ['true'], verify: '[::1]:443' } }).certificates;
    expect(a!.reload).toMatchObject({ target: 'command', command: ['true'], verify: '[::1]:443' });
  });
});

describe('Traefik: a dynamic file of its own, one default certificate', () => {
  const traefik = { reload: { target: 'traefik', traefik: { dynamicFile: '/etc/traefik/conf/agent.yml' } } };

  it('the default entry keeps the shared file; any other gets cert-agent-NAME.yml beside it', () => {
    const config = validateConfig({
      ca: CA,
      ...traefik,
      certificates: [
        { name: 'default', domains: ['a.internal'] },
        { name: 'grafana', domains: ['g.internal'] },
        { name: 'own', domains: ['o.internal'], reload: { traefik: { dynamicFile: '/srv/traefik/own.yml' } } },
      ],
    });
    expect(config.certificates.map((c) => c.reload.traefik.dynamicFile)).toEqual([
      '/etc/traefik/conf/agent.yml',
      '/etc/traefik/conf/cert-agent-grafana.yml',
      '/srv/traefik/own.yml',
    ]);
  });

  it('only the first Traefik certificate is the default certificate; the others say false', () => {
    const config = load(
      traefik,
      { reload: { target: 'none' } },
      {},
      {},
      { reload: { target: 'command', command: ['true'] } },
    );
    expect(config.certificates.map((c) => c.reload.traefik.defaultCertificate)).toEqual([
      undefined,
      undefined,
      false,
      undefined,
    ]);
    // The top-level view is the first certificate's.
    expect(config.reload.target).toBe('none');
  });

  it('an entry may not set the shared entry point', () => {
    expect(() => load(traefik, { reload: { traefik: { entryPoint: 'web' } } })).toThrow(
      /certificates\[0\] \(a\)\.reload\.traefik\.entryPoint: unknown field/,
    );
  });
});

describe('challenge.dns', () => {
  const TSIG = { name: 'cert-agent', secretFile: '/etc/cert-agent/tsig.secret' };
  const dns = (settings: Record<string, unknown>) => ({ challenge: { mode: 'dns', dns: settings } });
  const dnsOf = (settings: Record<string, unknown>) => load(dns(settings), {}).challenge.dns;

  /** The one-line ConfigError (exit 78) loading `shared` and `entries` gives: its field and message. */
  function refusal(shared: Record<string, unknown>, ...entries: Record<string, unknown>[]): [string, string] {
    try {
      load(shared, ...(entries.length ? entries : [{}]));
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).exitCode).toBe(ExitCode.config);
      expect((err as Error).message).not.toContain('\n');
      return [(err as ConfigError).field, (err as Error).message];
    }
    throw new Error('expected a ConfigError');
  }

  it('server and tsig: the defaults filled in, the server split, the key name and zone normalised', () => {
    expect(dnsOf({ server: '10.0.0.53', zone: 'App.Internal.', tsig: { ...TSIG, name: 'Cert-Agent.' } })).toEqual({
      server: { host: '10.0.0.53', port: 53 },
      zone: 'app.internal',
      tsig: { name: 'cert-agent', algorithm: 'hmac-sha256', secretFile: '/etc/cert-agent/tsig.secret' },
      propagationTimeoutSeconds: 120,
      ttl: 60,
    });
  });

  it.each([
    ['10.0.0.53:5353', { host: '10.0.0.53', port: 5353 }],
    ['[fd00::53]:5353', { host: 'fd00::53', port: 5353 }],
    ['[fd00::53]', { host: 'fd00::53', port: 53 }],
    ['fd00::53', { host: 'fd00::53', port: 53 }],
  ])('server %s is %o', (server, parsed) => {
    expect(dnsOf({ server, tsig: TSIG })?.server).toEqual(parsed);
  });

  it('command alone (any provider), server optional, every field given', () => {
    const settings = { command: ['/usr/local/bin/dns-hook', '--zone', 'x'], propagationTimeout: 300, ttl: 30 };
    expect(dnsOf(settings)).toEqual({ command: settings.command, propagationTimeoutSeconds: 300, ttl: 30 });
    const withAll = dnsOf({ ...settings, server: '192.0.2.53:53', zone: 'app.internal' });
    expect(withAll).toMatchObject({ server: { host: '192.0.2.53', port: 53 }, zone: 'app.internal' });
    expect(dnsOf({ server: '10.0.0.53', tsig: { ...TSIG, algorithm: 'hmac-sha512' } })?.tsig?.algorithm).toBe(
      'hmac-sha512',
    );
  });

  it.each([
    [{ tsig: TSIG }, 'challenge.dns.server', /is required with tsig: the IP address of the RFC 2136 server/],
    [{ server: '10.0.0.53' }, 'challenge.dns', /mode dns needs server and tsig .* or command/],
    [{}, 'challenge.dns', /mode dns needs server and tsig .* or command/],
    [
      { server: '10.0.0.53', tsig: TSIG, command: ['hook'] },
      'challenge.dns.command',
      /cannot be given together with tsig/,
    ],
    [
      { server: 'ns1.internal:53', tsig: TSIG },
      'challenge.dns.server',
      /"ns1.internal:53" must be an IP .*not a host name/,
    ],
    [{ server: '10.0.0.53:0', tsig: TSIG }, 'challenge.dns.server', /must be an IP address with an optional port/],
    [{ server: '[10.0.0.53]:53', tsig: TSIG }, 'challenge.dns.server', /not a host name/],
    [{ command: ['h'], zone: 'bad_zone!' }, 'challenge.dns.zone', /is not a DNS name/],
    [{ command: ['h'], zone: '10.0.0.1' }, 'challenge.dns.zone', /is not a DNS name/],
    [{ server: '10.0.0.53', tsig: { ...TSIG, name: 'a b' } }, 'challenge.dns.tsig.name', /is not a TSIG key name/],
    [
      { server: '10.0.0.53', tsig: { ...TSIG, algorithm: 'hmac-md5' } },
      'challenge.dns.tsig.algorithm',
      /hmac-sha256, hmac-sha512/,
    ],
    [
      { server: '10.0.0.53', tsig: { ...TSIG, secretFile: 'tsig.secret' } },
      'challenge.dns.tsig.secretFile',
      /absolute/,
    ],
    [{ server: '10.0.0.53', tsig: { name: 'k' } }, 'challenge.dns.tsig.secretFile', /is required/],
    [{ server: '10.0.0.53', tsig: { ...TSIG, secret: 'x' } }, 'challenge.dns.tsig.secret', /unknown field/],
    [{ command: 'hook --present' }, 'challenge.dns.command', /must be a list of strings/],
    [{ command: [] }, 'challenge.dns.command', /at least one/],
    [{ command: ['h'], propagationTimeout: 4 }, 'challenge.dns.propagationTimeout', /whole number from 5 to 3600/],
    [{ command: ['h'], propagationTimeout: 3601 }, 'challenge.dns.propagationTimeout', /from 5 to 3600/],
    [{ command: ['h'], ttl: 0 }, 'challenge.dns.ttl', /whole number from 1 to 86400/],
    [{ command: ['h'], ttl: 1.5 }, 'challenge.dns.ttl', /whole number/],
    [
      { command: ['h'], port: 53 },
      'challenge.dns.port',
      /unknown field; known fields here: command, propagationTimeout/,
    ],
  ])('%o is refused at %s', (settings, field, message) => {
    const [where, text] = refusal(dns(settings));
    expect(where).toBe(field);
    expect(text).toMatch(message);
  });

  it('a dns section without mode dns is refused, shared or in an entry', () => {
    const [field, message] = refusal({ challenge: { mode: 'standalone', dns: { command: ['h'] } } });
    expect(field).toBe('challenge.dns');
    expect(message).toMatch(/applies only to challenge.mode: dns \(the mode here is standalone\)/);
    expect(refusal({}, { challenge: { dns: { command: ['h'] } } })[0]).toBe('certificates[0] (a).challenge.dns');
  });

  it('mixed certificates: one entry switches to dns-01 while the others stay http-01', () => {
    const own = { server: '10.0.0.53:53', tsig: TSIG };
    const [a, b] = load({}, {}, { challenge: { mode: 'dns', dns: own } }).certificates;
    expect(a!.challenge).toEqual({ mode: 'standalone', listen: '0.0.0.0:80', webroot: '/var/www/acme-challenge' });
    expect(b!.challenge.mode).toBe('dns');
    expect(b!.challenge.dns?.server).toEqual({ host: '10.0.0.53', port: 53 });
  });

  it('an entry inherits the shared dns section, replaces it whole with its own, or leaves dns-01', () => {
    const shared = dns({ server: '10.0.0.53', tsig: TSIG, ttl: 30 });
    const [a, b, c] = load(
      shared,
      {},
      { challenge: { dns: { command: ['/usr/local/bin/hook'] } } },
      { challenge: { mode: 'webroot' } },
    ).certificates;
    expect(a!.challenge.dns).toMatchObject({ server: { host: '10.0.0.53', port: 53 }, tsig: { name: 'cert-agent' } });
    expect(b!.challenge.dns).toEqual({ command: ['/usr/local/bin/hook'], propagationTimeoutSeconds: 120, ttl: 60 });
    expect(c!.challenge).not.toHaveProperty('dns');
  });

  it('an entry switching to dns with no dns section anywhere is refused, naming the entry', () => {
    const [field, message] = refusal({}, {}, { challenge: { mode: 'dns' } });
    expect(field).toBe('certificates[1] (b).challenge.dns');
    expect(message).toMatch(/needs server and tsig/);
  });
});
