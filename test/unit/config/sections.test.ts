/**
 * The challenge and reload sections of a `certificates:` entry: each field
 * given overrides the shared section for that certificate alone; a target of
 * its own brings no shared command or verify address with it; a Traefik
 * certificate other than `default` writes a dynamic file of its own beside
 * the shared one; and only the first Traefik certificate is the default
 * certificate of Traefik's TLS store.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig, type AgentConfig } from '../../../agent/config/config.js';
import { ConfigError } from '../../../agent/lib/errors.js';

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
      load({}, {}, { challenge: { mode: 'dns' } });
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
