/**
 * `enroll --name`: which entry of the file the flags go to. The first enroll
 * writes a list of one; --name adds an entry and leaves the others as they
 * were, byte for byte; the short form of 0.1.0 stays the short form for its
 * own certificate and becomes a list when another is added; once there are
 * several, the per-certificate flags and the defaults their target brings
 * go into that certificate's entry alone.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { enroll, mergeEnrollInput, type EnrollInput } from '../../../agent/cli/enroll.js';
import { validateConfig } from '../../../agent/config/config.js';
import { UsageError } from '../../../agent/lib/errors.js';
import { tempDir } from '../../helpers/agent.js';
import { makeCa } from '../../helpers/certs.js';

const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const FIRST: EnrollInput = { 'ca-url': 'https://ca.internal:9000', fingerprint: [FP], domain: ['a.internal'] };
/** What enroll writes. */
const text = (existing: string | undefined, input: EnrollInput, name?: string) =>
  mergeEnrollInput(existing, input, name).toString({ lineWidth: 0 });
const js = (yaml: string) => parseDocument(yaml).toJS() as Record<string, any>;

/** A file of two entries as an operator keeps it: comments, a field order of their own. */
const TWO = `# the agent of web-1
ca:
  url: https://ca.internal:9000
  fingerprint: ${FP}
reload:
  target: nginx
  verify: 127.0.0.1:443
challenge:
  mode: webroot
certificates:
  - name: default
    # the public site
    domains:
      - a.internal
      - www.a.internal
    owner: www-data
  - domains:
      - grafana.internal
    name: grafana # its own consumer
    reload:
      target: command
      command:
        - systemctl
        - reload
        - grafana-server
`;

describe('the first enroll', () => {
  it('writes a list of one named default', () => {
    const doc = js(text(undefined, FIRST));
    expect(doc.certificates).toEqual([{ name: 'default', domains: ['a.internal'] }]);
    expect(doc.certificate).toBeUndefined();
    expect(validateConfig(doc).certificates.map((c) => c.certificate.name)).toEqual(['default']);
  });

  it('with --name, a list of one by that name, the target defaults in the shared sections', () => {
    const doc = js(text(undefined, { ...FIRST, reload: 'nginx' }, 'web'));
    expect(doc.certificates).toEqual([{ name: 'web', domains: ['a.internal'] }]);
    expect(doc.reload).toEqual({ target: 'nginx', verify: '127.0.0.1:443' });
    expect(doc.challenge).toEqual({ mode: 'webroot' });
  });
});

describe('--name on a list', () => {
  it('adds an entry at the end and leaves every other entry as it was, byte for byte', () => {
    const before = parseDocument(TWO).toString({ lineWidth: 0 });
    const after = text(TWO, { domain: ['c.internal'] }, 'cache');
    expect(after.startsWith(before)).toBe(true);
    expect(js(after).certificates[2]).toEqual({ name: 'cache', domains: ['c.internal'] });
    // Re-enrolling one entry rewrites only that entry.
    const again = text(TWO, { domain: ['grafana.internal', 'g.internal'] }, 'grafana');
    const head = before.slice(0, before.indexOf('  - domains:'));
    expect(again.startsWith(head)).toBe(true);
    expect(js(again).certificates[0]).toEqual(js(before).certificates[0]);
  });

  it('without --name, several entries are a usage error listing their names', () => {
    expect(() => mergeEnrollInput(TWO, { domain: ['x.internal'] })).toThrow(UsageError);
    expect(() => mergeEnrollInput(TWO, { domain: ['x.internal'] })).toThrow(
      /the config has 2 certificates: name one with --name \(one of: default, grafana\)/,
    );
  });

  it('without --name, a list of one is that entry, its challenge and reload in the shared sections', () => {
    const one = text(undefined, FIRST, 'web');
    const doc = js(text(one, { reload: 'nginx', domain: ['b.internal'] }));
    expect(doc.certificates).toEqual([{ name: 'web', domains: ['b.internal'] }]);
    expect(doc.reload.target).toBe('nginx');
  });

  it('the per-certificate flags go into the entry once there are several, the target defaults with them', () => {
    const doc = js(
      text(TWO, { domain: ['c.internal'], reload: 'command', 'reload-command': ['kill', '-HUP', '1'] }, 'cache'),
    );
    expect(doc.certificates[2]).toEqual({
      name: 'cache',
      domains: ['c.internal'],
      reload: { target: 'command', command: ['kill', '-HUP', '1'] },
      // The shared mode is nginx's webroot; a command's consumer gets the default standalone.
      challenge: { mode: 'standalone' },
    });
    // The shared sections are untouched.
    expect(doc.reload).toEqual({ target: 'nginx', verify: '127.0.0.1:443' });
    expect(doc.challenge).toEqual({ mode: 'webroot' });
    const grafana = js(text(TWO, { challenge: 'proxy', verify: '127.0.0.1:3443' }, 'grafana')).certificates[1];
    expect(grafana.challenge).toEqual({ mode: 'proxy' });
    expect(grafana.reload.verify).toBe('127.0.0.1:3443');
  });

  it('--reload nginx on a new entry brings webroot and verify into that entry only', () => {
    const shared = text(undefined, FIRST); // target none, standalone: nothing in the shared sections
    const doc = js(text(shared, { domain: ['b.internal'], reload: 'nginx' }, 'b'));
    expect(doc.certificates[1]).toEqual({
      name: 'b',
      domains: ['b.internal'],
      reload: { target: 'nginx', verify: '127.0.0.1:443' },
      challenge: { mode: 'webroot' },
    });
    expect(doc.certificates[0]).toEqual({ name: 'default', domains: ['a.internal'] });
    expect(doc.reload).toBeUndefined();
    expect(doc.challenge).toBeUndefined();
    const config = validateConfig(doc);
    expect(config.certificates[0]!.reload.target).toBe('none');
    expect(config.certificates[0]!.challenge.mode).toBe('standalone');
  });

  it('a new entry that names no target of its own inherits the shared reload and challenge as they are', () => {
    // The shared verify and mode were chosen by hand: a new certificate of the same consumer keeps them.
    const chosen = TWO.replace('verify: 127.0.0.1:443', 'verify: 10.0.0.5:8443').replace(
      'mode: webroot',
      'mode: standalone',
    );
    const doc = js(text(chosen, { domain: ['c.internal'] }, 'cache'));
    expect(doc.certificates[2]).toEqual({ name: 'cache', domains: ['c.internal'] });
    const [first, , cache] = validateConfig(doc).certificates;
    expect(cache!.reload.verify).toBe('10.0.0.5:8443');
    expect(cache!.challenge).toEqual(first!.challenge);
  });
});

describe('a list of one whose entry overrides the shared sections', () => {
  const OWN = `ca:
  url: https://ca.internal:9000
  fingerprint: ${FP}
certificates:
  - name: web
    domains: [a.internal]
    reload:
      target: nginx
      verify: 127.0.0.1:443
    challenge:
      mode: webroot
`;

  it.each([undefined, 'web'])(
    '--reload (--name %s) changes what the certificate uses, not a shared field it overrides',
    (name) => {
      const doc = js(text(OWN, { reload: 'traefik' }, name));
      const [web] = validateConfig(doc).certificates;
      expect(web!.reload.target).toBe('traefik');
      expect(web!.challenge.mode).toBe('proxy');
      expect(web!.reload.verify).toBe('127.0.0.1:443');
    },
  );
});

describe('--name on the short form', () => {
  const SHORT = `ca:
  url: https://ca.internal:9000
  fingerprint: ${FP}
certificate:
  domains: [a.internal] # the site
  dir: /srv/tls
reload:
  target: nginx
`;

  it('of its own name (default, or the name it carries) keeps the short form', () => {
    const doc = js(text(SHORT, { domain: ['b.internal'] }, 'default'));
    expect(doc.certificate).toEqual({ domains: ['b.internal'], dir: '/srv/tls' });
    expect(doc.certificates).toBeUndefined();
    const named = SHORT.replace('certificate:\n', 'certificate:\n  name: web\n');
    const again = js(text(named, { domain: ['b.internal'] }, 'web'));
    expect(again.certificate).toMatchObject({ name: 'web', domains: ['b.internal'] });
    expect(again.certificates).toBeUndefined();
    expect(js(text(SHORT, { domain: ['c.internal'] })).certificate.domains).toEqual(['c.internal']);
  });

  it('of another name makes a list: the first keeps its fields, comments and name, the new one second', () => {
    const out = text(SHORT, { domain: ['b.internal'] }, 'b');
    const doc = js(out);
    expect(doc.certificate).toBeUndefined();
    expect(doc.certificates).toEqual([
      { name: 'default', domains: ['a.internal'], dir: '/srv/tls' },
      { name: 'b', domains: ['b.internal'] },
    ]);
    expect(out).toContain('# the site');
    const before = validateConfig(js(SHORT));
    const [first, b] = validateConfig(doc).certificates;
    expect(first).toEqual(before.certificates[0]);
    expect(b!.certificate.dir).toBe('/etc/cert-agent/certs/b');
  });

  it('of another name keeps the name the short form carried, and its view', () => {
    const named = SHORT.replace('certificate:\n', 'certificate:\n  name: web\n').replace(
      'target: nginx',
      'target: traefik',
    );
    const doc = js(text(named, { domain: ['b.internal'] }, 'b'));
    expect(doc.certificates.map((c: { name: string }) => c.name)).toEqual(['web', 'b']);
    const before = validateConfig(js(named)).certificates[0];
    const [first] = validateConfig(doc).certificates;
    // Traefik keeps reading the same dynamic file for it.
    expect(first).toEqual(before);
  });
});

describe('enroll --name, the whole command with a root file', () => {
  it('--reload command without --reload-command for a new entry is the usage error (64) it is for one', async () => {
    const ca = await makeCa('Enroll entries');
    const dir = tempDir('enroll-entries-');
    const rootFile = join(dir, 'root.pem');
    writeFileSync(rootFile, ca.root.pem);
    const config = join(dir, 'config.yaml');
    const input: EnrollInput = {
      'ca-url': 'https://ca.internal:9000',
      fingerprint: [ca.fingerprint],
      'root-file': rootFile,
      domain: ['a.internal'],
      'cert-dir': join(dir, 'tls'),
      'state-dir': join(dir, 'state'),
    };
    await enroll(config, input, new Date());
    const before = readFileSync(config, 'utf8');
    const add = { domain: ['b.internal'], 'cert-dir': join(dir, 'b'), reload: 'command' };
    const err = await enroll(config, add, new Date(), { name: 'b' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(64);
    expect((err as Error).message).toMatch(/enroll needs --reload-command ARG \(CERT_AGENT_RELOAD_COMMAND\)/);
    expect(readFileSync(config, 'utf8')).toBe(before);
    // With the command, the entry has both and the first certificate is as it was.
    const done = await enroll(config, { ...add, 'reload-command': ['true'] }, new Date(), { name: 'b' });
    expect(done.config.certificate.name).toBe('b');
    expect(done.config.reload).toMatchObject({ target: 'command', command: ['true'] });
    expect(existsSync(config)).toBe(true);
    expect(js(readFileSync(config, 'utf8')).certificates[0]).toEqual(js(before).certificates[0]);
  });
});
