/**
 * The packaging artifacts themselves: the systemd units (the daemon, and timer
 * mode's timer and oneshot service) pass `systemd-analyze verify`, both
 * services score ≤ 2.1 on `systemd-analyze security` with the same sandbox,
 * the .deb built by `make deb` lists the expected files and passes lintian
 * without errors, and the example config is every field at its default.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig, validateConfig } from '../../agent/config/config.js';
import { tempDir } from '../helpers/agent.js';
import { buildDeb } from '../harness/rootfs.js';
import { bundledPackages } from '../../packaging/deb/notices.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const UNIT = join(ROOT, 'packaging/cert-agent.service');
const PASS_UNIT = join(ROOT, 'packaging/cert-agent-pass.service');
const TIMER = join(ROOT, 'packaging/cert-agent.timer');
let work: string;

beforeAll(() => {
  work = tempDir('cert-agent-pkg-');
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('systemd unit', () => {
  it.each([['cert-agent.service'], ['cert-agent-pass.service', 'cert-agent.timer']])(
    'passes systemd-analyze verify (no warnings) in a root that has the binary: %s',
    (...names: string[]) => {
      // verify checks that ExecStart= exists; a scratch root holds the units,
      // the host's targets and slices, and a stand-in /usr/bin/cert-agent.
      const root = join(work, `verify-root-${names[0]}`);
      const units = join(root, 'lib/systemd/system');
      mkdirSync(units, { recursive: true });
      mkdirSync(join(root, 'usr/bin'), { recursive: true });
      mkdirSync(join(root, 'bin'), { recursive: true });
      for (const f of readdirSync('/lib/systemd/system'))
        if (/\.(target|slice)$/.test(f)) copyFileSync(join('/lib/systemd/system', f), join(units, f));
      for (const unit of [UNIT, PASS_UNIT, TIMER]) copyFileSync(unit, join(units, basename(unit)));
      writeFileSync(join(root, 'usr/bin/cert-agent'), '#!/bin/sh\n');
      chmodSync(join(root, 'usr/bin/cert-agent'), 0o755);
      copyFileSync('/bin/sh', join(root, 'bin/sh'));
      const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...names], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
  );

  it.each([UNIT, PASS_UNIT])(
    'scores 2.1 or lower on systemd-analyze security --offline=true, exposed only where the job needs it: %s',
    (unit) => {
      const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], { encoding: 'utf8' });
      const m = new RegExp(`Overall exposure level for ${basename(unit).replace('.', '\\.')}: (\\d+\\.\\d+)`).exec(
        r.stdout,
      );
      expect(m, r.stdout + r.stderr).not.toBeNull();
      const score = Number(m![1]);
      console.log(`systemd-analyze security exposure of ${basename(unit)}: ${score}`);
      expect(score).toBeLessThanOrEqual(2.1);
      // Each exposure is one the README explains; anything more fails here even within the score.
      const args = ['security', '--offline=true', '--no-pager', '--json=short', unit];
      const json = spawnSync('systemd-analyze', args, { encoding: 'utf8' });
      const checks = JSON.parse(json.stdout) as { name: string; exposure: string | null }[];
      const exposed = checks.filter((c) => Number(c.exposure) > 0).map((c) => c.name);
      expect(exposed.sort()).toEqual(
        [
          'CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP)', // certificate.owner/group
          'CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)', // nginx -t opens nginx's logs; files of certificate.owner
          'CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)', // port 80 (standalone http-01)
          'DeviceAllow=', // char-rtc, read-only: what ProtectClock= itself adds
          'IPAddressDeny=', // the site's CA on a private address
          'MemoryDenyWriteExecute=', // V8's JIT
          'PrivateNetwork=', // the CA and port 80
          'PrivateUsers=', // port 80 and signalling nginx
          'RestrictAddressFamilies=~AF_(INET|INET6)', // the CA and port 80
          'RestrictAddressFamilies=~AF_UNIX', // reload.command (systemctl)
          'RootDirectory=/RootImage=', // reads the container's proxy setup
          'SystemCallFilter=~@privileged', // only @chown, for certificate.owner/group
          'User=/DynamicUser=', // root: all of the above
        ].sort(),
      );
      expect(json.stdout).toContain('and @privileged is included (e.g. chown is allowed)');
    },
  );

  it('timer mode runs under the same sandbox as the daemon, line for line', () => {
    // Everything in [Service] but how the process is started and restarted.
    const own =
      /^(Type|ExecStart|ExecReload|Restart|RestartSec|RestartPreventExitStatus|TimeoutStopSec|TimeoutStartSec|KillMode)=/;
    const service = (path: string) => {
      const text = readFileSync(path, 'utf8');
      const install = text.search(/^\[Install\]$/m);
      const body = text.slice(text.search(/^\[Service\]$/m), install === -1 ? undefined : install);
      return body
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#') && !own.test(l));
    };
    const daemon = service(UNIT);
    expect(daemon.length).toBeGreaterThan(30);
    expect(service(PASS_UNIT)).toEqual(daemon);
    const unitSection = (path: string) => {
      const text = readFileSync(path, 'utf8');
      return text
        .slice(text.search(/^\[Unit\]$/m), text.search(/^\[Service\]$/m))
        .split('\n')
        .filter((l) => /^(After|Wants|ConditionPathExists)=/.test(l));
    };
    expect(unitSection(PASS_UNIT)).toEqual(unitSection(UNIT));
  });

  it('the timer starts the oneshot pass, every 5 minutes like the default renewal.check, never beside the daemon', () => {
    const timer = readFileSync(TIMER, 'utf8');
    const pass = readFileSync(PASS_UNIT, 'utf8');
    expect(timer).toMatch(/^Unit=cert-agent-pass\.service$/m);
    expect(timer).toMatch(/^OnCalendar=\*:0\/5$/m);
    expect(timer).toMatch(/^Persistent=true$/m);
    expect(timer).toMatch(/^Conflicts=cert-agent\.service$/m);
    expect(pass).toMatch(/^Type=oneshot$/m);
    expect(pass).toMatch(/^ExecStart=\/usr\/bin\/cert-agent check$/m);
    expect(
      parseConfig(
        'ca: {url: "https://ca.internal", fingerprint: "' +
          'a'.repeat(64) +
          '"}\ncertificate: {domains: [x.internal]}\n',
      ).renewal.check,
    ).toBe('*/5 * * * *');
  });

  it('does not restart on a configuration error and keeps the capabilities the job needs', () => {
    const text = readFileSync(UNIT, 'utf8');
    const setting = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]).join(' ');
    expect(setting('ExecStart')).toBe('/usr/bin/cert-agent run');
    expect(setting('Restart')).toBe('on-failure');
    expect(setting('RestartPreventExitStatus').split(/\s+/)).toContain('78');
    expect(setting('CapabilityBoundingSet').split(/\s+/)).toContain('CAP_NET_BIND_SERVICE');
    // No SecureBits=noroot: it only took the bounded set away from what the agent runs as root
    // (nginx -t, reload.command), which as uid 0 still owns every root file: no boundary.
    for (const unit of [UNIT, PASS_UNIT]) expect(readFileSync(unit, 'utf8')).not.toMatch(/^SecureBits=/m);
    const rw = setting('ReadWritePaths')
      .split(/\s+/)
      .map((p) => p.replace(/^-/, ''));
    expect(rw).toEqual(
      expect.arrayContaining(['/etc/cert-agent', '/var/lib/cert-agent', '/etc/traefik/dynamic', '/var/log/nginx']),
    );
  });
});

describe('Debian package', () => {
  let deb: string;
  beforeAll(() => {
    deb = buildDeb();
  });

  it('is named cert-agent_<version>_all.deb and lists the expected files', () => {
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    expect(deb.endsWith(`/cert-agent_${version}_all.deb`)).toBe(true);
    const listing = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' });
    const entries = new Map(
      listing
        .trim()
        .split('\n')
        .map((l) => {
          const f = l.split(/\s+/);
          return [f[5]!.replace(/^\.\//, '/').replace(/\/$/, ''), { mode: f[0]!, owner: f[1]!, link: f[7] }];
        }),
    );
    expect(entries.get('/usr/lib/cert-agent/cert-agent.cjs')?.mode).toBe('-rwxr-xr-x');
    expect(entries.get('/usr/bin/cert-agent')).toMatchObject({
      mode: 'lrwxrwxrwx',
      link: '../lib/cert-agent/cert-agent.cjs',
    });
    for (const unit of ['cert-agent.service', 'cert-agent-pass.service', 'cert-agent.timer']) {
      expect(entries.get(`/usr/lib/systemd/system/${unit}`)?.mode, unit).toBe('-rw-r--r--');
    }
    // The template hook (cert-agent-fleet install takes it from the package) and the Proxmox host scripts.
    for (const f of ['postinstall.sh', 'proxmox/cert-agent-fleet', 'proxmox/cert-agent-ca-hook']) {
      expect(entries.get(`/usr/share/cert-agent/${f}`)?.mode, f).toBe('-rwxr-xr-x');
    }
    // What cert-agent-fleet reads from its own directory: not a command.
    expect(entries.get('/usr/share/cert-agent/proxmox/cert-agent-cluster.sh')?.mode).toBe('-rw-r--r--');
    const expected = [
      '/usr/share/cert-agent/config.example.yaml',
      '/usr/share/cert-agent/status.schema.json',
      ...['README.md', 'copyright', 'changelog.gz', 'migration.md', 'THIRD-PARTY-NOTICES'].map(
        (f) => `/usr/share/doc/cert-agent/${f}`,
      ),
    ];
    for (const f of expected) {
      expect(entries.has(f), f).toBe(true);
    }
    for (const proxy of ['nginx', 'traefik']) {
      const dir = join(ROOT, 'packaging', proxy);
      let shipped: string[] = [];
      try {
        shipped = readdirSync(dir, { recursive: true, withFileTypes: true })
          .filter((d) => d.isFile())
          .map((d) => join(d.parentPath, d.name).slice(dir.length));
      } catch {
        /* not there yet */
      }
      for (const f of shipped) expect(entries.has(`/usr/share/cert-agent/${proxy}${f}`), f).toBe(true);
    }
    expect([...entries.values()].every((e) => e.owner === 'root/root')).toBe(true);
    const control = execFileSync('dpkg-deb', ['-f', deb, 'Depends', 'Architecture', 'Package'], { encoding: 'utf8' });
    expect(control).toContain('Depends: nodejs (>= 20)');
    expect(control).toContain('Architecture: all');
    const scripts = execFileSync('dpkg-deb', ['-I', deb], { encoding: 'utf8' });
    for (const s of ['postinst', 'prerm', 'postrm'])
      expect(scripts).toMatch(new RegExp(`\\d+ lines\\s+\\*\\s+${s}\\b`));
  });

  it('copyright and THIRD-PARTY-NOTICES name exactly the packages esbuild put into the bundle', () => {
    const meta = join(ROOT, 'bundle/out/meta.json');
    const names = bundledPackages(meta).map((d) => d.slice(d.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(names).toEqual(['yaml']);
    const tarball = execFileSync('dpkg-deb', ['--fsys-tarfile', deb], { encoding: 'buffer' });
    const doc = (f: string) =>
      execFileSync('tar', ['-xOf', '-', `./usr/share/doc/cert-agent/${f}`], { input: tarball, encoding: 'utf8' });
    const shipped = doc('copyright');
    const comment = shipped.slice(shipped.indexOf('Comment:'), shipped.indexOf('\n\n'));
    for (const n of names) expect(comment, n).toMatch(new RegExp(`(^|[ ,])${n.replace('/', '\\/')}[,;( \n]`));
    for (const n of ['acme-client', 'undici', '@peculiar/x509', 'reflect-metadata', 'axios']) {
      expect(shipped).not.toContain(n);
    }
    const notices = doc('THIRD-PARTY-NOTICES');
    for (const dir of bundledPackages(meta)) {
      type Pkg = { name: string; version: string; license: string };
      const pkg = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Pkg;
      expect(notices).toContain(`${pkg.name} ${pkg.version} (${pkg.license})`);
      expect(comment).toContain(`${pkg.license}`);
    }
  });

  it('has no lintian errors (the remaining warnings are explained in the README)', () => {
    const r = spawnSync('lintian', ['--allow-root', '--no-tag-display-limit', deb], { encoding: 'utf8' });
    const tags = r.stdout.trim().split('\n').filter(Boolean);
    expect(tags.filter((t) => t.startsWith('E:'))).toEqual([]);
    const allowed = /^W: cert-agent: (maintainer-script-calls-systemctl|no-manual-page) /;
    expect(tags.filter((t) => !allowed.test(t))).toEqual([]);
  });
});

describe('uninstall', () => {
  it('the package and the hook remove the same files: purge_agent_files is the same text in both', () => {
    const fn = (file: string) => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const start = text.indexOf('purge_agent_files() {');
      expect(start, file).toBeGreaterThan(0);
      return text.slice(start, text.indexOf('\n}\n', start) + 3);
    };
    expect(fn('packaging/postinstall.sh')).toBe(fn('packaging/deb/postrm'));
  });
});

describe('packaging/config.example.yaml', () => {
  const example = readFileSync(join(ROOT, 'packaging/config.example.yaml'), 'utf8');

  it('is valid and every value in it is the default', () => {
    const parsed = parseConfig(example, 'config.example.yaml');
    const minimal = parseConfig(
      `ca: {url: "${parsed.ca.url}", fingerprint: "${parsed.ca.fingerprints[0]}"}\ncertificate: {domains: [${parsed.certificate.domains.join(', ')}]}\n`,
    );
    expect(parsed).toEqual(minimal);
  });

  it('names every field the config accepts, commented-out ones included', () => {
    // Uncommenting `# key: value` lines must still give a valid config, and
    // each leaf of the parsed Config must appear as a key in the file.
    // Section headers (`# dns:`) too. challenge.dns applies to mode dns alone and
    // its tsig and command exclude each other: read as the RFC 2136 form.
    const uncommented = example.replace(/^(\s*)# ([a-zA-Z]+:(?: .*)?)$/gm, '$1$2');
    const doc = parseYaml(uncommented) as { challenge: { mode: string; dns: { command?: unknown } } };
    doc.challenge.mode = 'dns';
    delete doc.challenge.dns.command;
    const full = validateConfig(doc);
    const leaves = (o: object): string[] =>
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? leaves(v) : [k]));
    const keysInFile = new Set([...uncommented.matchAll(/^\s*([a-zA-Z]+):/gm)].map((m) => m[1]));
    const renamed: Record<string, string> = {
      fingerprints: 'fingerprint',
      timeoutSeconds: 'timeout',
      orderTimeoutSeconds: 'orderTimeout',
      binary: 'binary',
      share: 'minAllowance',
      host: 'server',
      port: 'server',
      propagationTimeoutSeconds: 'propagationTimeout',
    };
    // `certificates` is the list form, shown as a second example in plain comments (test/unit/config/schema.test.ts).
    const { certificates: _views, ...view } = full;
    for (const leaf of leaves(view)) expect(keysInFile.has(renamed[leaf] ?? leaf), leaf).toBe(true);
    expect(full.reload.command).toEqual(['systemctl', 'reload', 'haproxy']);
  });

  it('names every key the validator reads, optional ones included', () => {
    // The keys agent/config/{config,sections,certificates}.ts ask their reader
    // for: a field added there and not documented here fails.
    const source = ['config', 'sections', 'certificates']
      .map((f) => readFileSync(join(ROOT, `agent/config/${f}.ts`), 'utf8'))
      .join('\n');
    const reader = /\.(?:section|string|number|boolean|list|[a-z]+List|optional[A-Z]\w*)\('([a-zA-Z]+)'/g;
    const read = new Set([...source.matchAll(reader)].map((m) => m[1]));
    expect(read.size).toBeGreaterThan(30);
    const keysInFile = new Set([...example.matchAll(/^\s*(?:# )?([a-zA-Z]+):/gm)].map((m) => m[1]));
    expect([...read].filter((k) => !keysInFile.has(k))).toEqual([]);
  });
});
