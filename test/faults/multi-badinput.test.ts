/**
 * Bad input with several certificates, through the bundle: a `certificates:`
 * list that breaks one of the rules that keep certificates apart (a name
 * twice, one directory for two, one directory inside another, an entry
 * without domains, a name that is not a safe path component, both forms at
 * once). Each must be refused by `renew` and by `check` (timer mode, which
 * would otherwise write state) with exit 78 and ONE line on stderr naming the
 * entry, and leave the config file's bytes, the state directory and both
 * certificate directories exactly as they were. Then the CLI's own names:
 * `enroll --name` with an unsafe name (64, nothing written) and `renew
 * --name` of a certificate the config does not have (64, naming the ones it has).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgent, tempDir } from '../helpers/agent.js';
import { snapshot } from './common.js';
import { record } from './table.js';

type Doc = Record<string, unknown>;
type Entry = Record<string, unknown>;

let sandbox: string;
const cleanups: string[] = [];
afterAll(() => {
  for (const d of cleanups) rmSync(d, { recursive: true, force: true });
});

/** A sandbox as an agent of two certificates leaves it: each directory holding files, a state file each. */
function installation(): { dir: string; a: string; b: string; state: string } {
  const dir = tempDir('cert-agent-multibad-');
  cleanups.push(dir);
  const a = join(dir, 'certs', 'a');
  const b = join(dir, 'certs', 'b');
  const state = join(dir, 'state');
  for (const d of [a, b]) {
    mkdirSync(join(d, '.sets', 'set-1'), { recursive: true, mode: 0o755 });
    writeFileSync(join(d, '.sets', 'set-1', 'cert.pem'), 'not read\n');
  }
  mkdirSync(state, { recursive: true, mode: 0o700 });
  writeFileSync(join(state, 'state-a.json'), '{"consecutiveFailures":0,"backoffStep":0,"placeholder":false}\n');
  writeFileSync(join(state, 'state-b.json'), '{"consecutiveFailures":2,"backoffStep":2,"placeholder":false}\n');
  return { dir, a, b, state };
}

function docWith(paths: ReturnType<typeof installation>, entries: (dirs: { a: string; b: string }) => Entry[]): Doc {
  return {
    ca: { url: 'https://127.0.0.1:9', fingerprint: 'a'.repeat(64) },
    certificates: entries({ a: paths.a, b: paths.b }),
    challenge: { mode: 'standalone', listen: '127.0.0.1:18080' },
    stateDir: paths.state,
  };
}

const a = (dir: string): Entry => ({ name: 'a', domains: ['a.internal'], dir });

interface Case {
  name: string;
  entries?: (dirs: { a: string; b: string }) => Entry[];
  /** Instead of a list: the whole document from the installation's paths. */
  doc?: (p: ReturnType<typeof installation>) => Doc;
  /** What the one line must say (besides exit 78). */
  says: RegExp;
}

const cases: Case[] = [
  {
    name: 'the same name twice',
    entries: (d) => [a(d.a), { name: 'a', domains: ['b.internal'], dir: d.b }],
    says: /^cert-agent: config: certificates\[1\] \(a\)\.name: "a" is already the name of certificates\[0\]/,
  },
  {
    name: 'the same directory',
    entries: (d) => [a(d.a), { name: 'b', domains: ['b.internal'], dir: d.a }],
    says: /^cert-agent: config: certificates\[1\] \(b\)\.dir: ".*\/certs\/a" overlaps the directory of certificates\[0\] \(a\)/,
  },
  {
    name: 'the same directory, spelt with a trailing slash',
    entries: (d) => [a(d.a), { name: 'b', domains: ['b.internal'], dir: `${d.a}/` }],
    says: /^cert-agent: config: certificates\[1\] \(b\)\.dir: .* overlaps the directory of certificates\[0\] \(a\)/,
  },
  {
    name: "one directory inside the other's",
    entries: (d) => [a(d.a), { name: 'b', domains: ['b.internal'], dir: join(d.a, 'b') }],
    says: /^cert-agent: config: certificates\[1\] \(b\)\.dir: ".*\/certs\/a\/b" overlaps the directory of certificates\[0\] \(a\)/,
  },
  {
    name: "the other's directory inside this one",
    entries: (d) => [{ name: 'b', domains: ['b.internal'], dir: join(d.a, 'b') }, a(d.a)],
    says: /^cert-agent: config: certificates\[1\] \(a\)\.dir: ".*\/certs\/a" overlaps the directory of certificates\[0\] \(b\)/,
  },
  {
    name: 'an entry without domains',
    entries: (d) => [a(d.a), { name: 'b', dir: d.b }],
    says: /^cert-agent: config: certificates\[1\] \(b\)\.domains: is required$/,
  },
  {
    name: 'an entry with an empty list of domains',
    entries: (d) => [a(d.a), { name: 'b', domains: [], dir: d.b }],
    says: /^cert-agent: config: certificates\[1\] \(b\)\.domains: must name at least one entry$/,
  },
  ...['../x', 'A', '', 'a/b', '.', 'b\nc'].map((bad) => ({
    name: `name ${JSON.stringify(bad)}`,
    entries: (d: { a: string; b: string }) => [a(d.a), { name: bad, domains: ['b.internal'], dir: d.b }],
    says: new RegExp(
      `^cert-agent: config: certificates\\[1\\]\\.name: ${bad === '' ? 'must be a non-empty string, got ""' : `${escape(JSON.stringify(bad))} is not a certificate name`}`,
    ),
  })),
  {
    name: 'an entry without a name',
    entries: (d) => [a(d.a), { domains: ['b.internal'], dir: d.b }],
    says: /^cert-agent: config: certificates\[1\]\.name: is required$/,
  },
  {
    name: 'both certificate: and certificates:',
    doc: (p) => ({ ...docWith(p, (d) => [a(d.a)]), certificate: { domains: ['b.internal'], dir: p.b } }),
    says: /^cert-agent: config: certificates: give either certificate .* or certificates .*, not both$/,
  },
];

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('bad input with several certificates', () => {
  beforeAll(() => {
    sandbox = tempDir('cert-agent-multibad-cli-');
    cleanups.push(sandbox);
  });

  it('each broken list: exit 78, one line naming the entry, nothing touched (renew and check)', async ({ task }) => {
    const wrong: string[] = [];
    const samples: string[] = [];
    for (const c of cases) {
      const p = installation();
      const config = join(p.dir, 'config.yaml');
      const doc = c.doc ? c.doc(p) : docWith(p, c.entries!);
      writeFileSync(config, JSON.stringify(doc, null, 2), { mode: 0o600 });
      const bytes = readFileSync(config);
      const before = snapshot(p.dir);
      for (const command of ['renew', 'check']) {
        const r = await runAgent([command, '--config', config], { timeoutMs: 20_000 });
        const lines = r.stderr.split('\n').filter(Boolean);
        const problems = [
          r.code !== 78 ? `exit ${r.code}` : '',
          lines.length !== 1 ? `${lines.length} lines on stderr` : '',
          lines.length === 1 && !c.says.test(lines[0]!) ? 'message' : '',
          r.stdout !== '' ? 'stdout not empty' : '',
          !readFileSync(config).equals(bytes) ? 'config file changed' : '',
          snapshot(p.dir).join('\n') !== before.join('\n') ? 'files touched' : '',
        ].filter(Boolean);
        if (problems.length) wrong.push(`${c.name} (${command}): ${problems.join(', ')}: ${JSON.stringify(r.stderr)}`);
        else if (command === 'renew') samples.push(lines[0]!);
      }
    }
    expect(wrong).toEqual([]);
    record(task, {
      scenario: 'several certificates: bad lists',
      injected: `${cases.length} configs: ${cases.map((c) => c.name).join('; ')}; each to renew and check`,
      expected: 'exit 78, one line naming the entry, config bytes, state and certificate directories unchanged',
      observed: `${cases.length * 2}/${cases.length * 2} as expected, e.g. "${samples[1]!.slice(0, 150)}"`,
    });
  }, 120_000);

  it('enroll --name with an unsafe name: exit 64, one line, nothing written', async () => {
    for (const bad of ['bad/name', '../x', 'A', '']) {
      const dir = join(sandbox, `enroll-${Buffer.from(bad).toString('hex') || 'empty'}`);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const before = snapshot(dir);
      const r = await runAgent([
        'enroll',
        '--name',
        bad,
        '--config',
        join(dir, 'config.yaml'),
        '--ca-url',
        'https://127.0.0.1:9',
        '--fingerprint',
        'a'.repeat(64),
        '--domain',
        'a.internal',
        '--state-dir',
        join(dir, 'state'),
        '--allow-unreachable',
      ]);
      expect(r.code, `--name ${JSON.stringify(bad)}: ${r.stderr}`).toBe(64);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^cert-agent: --name .*: lower-case letters, digits, - and _/);
      expect(r.stdout).toBe('');
      expect(snapshot(dir)).toEqual(before);
      expect(existsSync(join(dir, 'config.yaml'))).toBe(false);
    }
  });

  it('renew --name of a certificate the config does not have: exit 64 naming the ones it has', async () => {
    const p = installation();
    const config = join(p.dir, 'config.yaml');
    const doc = docWith(p, (d) => [a(d.a), { name: 'b', domains: ['b.internal'], dir: d.b }]);
    writeFileSync(config, JSON.stringify(doc, null, 2), { mode: 0o600 });
    const before = snapshot(p.dir);
    for (const command of ['renew', 'status']) {
      const r = await runAgent([command, '--name', 'unknown', '--config', config]);
      expect(r.code, r.stderr).toBe(64);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines).toEqual([
        expect.stringMatching(/^cert-agent: --name "unknown": no such certificate in .*\(it has: a, b\)$/),
      ]);
      expect(r.stdout).toBe('');
    }
    expect(snapshot(p.dir)).toEqual(before);
  });
});
