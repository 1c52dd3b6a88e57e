/**
 * What the agent refuses, through the bundle: a wrong pin, a man in the
 * middle that repeats the real /roots answer, and invalid configuration.
 * Each exits with its documented code and a one-line message, and writes
 * nothing.
 */
import { chmodSync, chownSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { startMitm, type Mitm } from '../harness/mitm.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { enrollArgs } from '../helpers/enrolled.js';

let ca: StepCa;
let mitm: Mitm;
let dir: string;
const WRONG = 'ab'.repeat(32);

beforeAll(async () => {
  ca = await startStepCa();
  mitm = await startMitm(ca);
  dir = tempDir();
});
afterAll(async () => {
  await mitm?.close();
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function expectOneLine(stderr: string): void {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('pin mismatch', () => {
  it('bootstrap names the expected and the offered fingerprints, exits 65, writes nothing', async () => {
    const out = join(dir, 'root.pem');
    const r = await runAgent(['bootstrap', '--ca-url', ca.url, '--fingerprint', WRONG, '--out', out]);
    expect(r.code).toBe(65);
    expect(r.stderr).toContain(WRONG);
    expect(r.stderr).toContain(ca.rootFingerprint);
    expectOneLine(r.stderr);
    expect(existsSync(out)).toBe(false);
  });

  it('bootstrap with the right pin prints the root', async () => {
    const r = await runAgent([
      'bootstrap',
      '--ca-url',
      ca.url,
      '--fingerprint',
      ca.rootFingerprint.replace(/(..)(?!$)/g, '$1:').toUpperCase(),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(ca.rootPem.trim());
  });

  it('enroll with a wrong pin exits 65 and writes no config, state or certificate', async () => {
    const base = join(dir, 'wrongpin');
    const r = await runAgent(enrollArgs(ca, base, { fingerprint: WRONG }));
    expect(r.code).toBe(65);
    expect(r.stderr).toContain(`expected ${WRONG}`);
    expect(r.stderr).toContain(ca.rootFingerprint);
    expectOneLine(r.stderr);
    expect(existsSync(base)).toBe(false);
  });
});

describe('man in the middle', () => {
  it('a CA whose TLS certificate comes from another root is refused although /roots offers the pinned root', async () => {
    const base = join(dir, 'mitm');
    const r = await runAgent(enrollArgs(ca, base, { caUrl: mitm.url }));
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/does not verify against the pinned CA root/);
    expectOneLine(r.stderr);
    expect(existsSync(base)).toBe(false);
    const b = await runAgent(['bootstrap', '--ca-url', mitm.url, '--fingerprint', ca.rootFingerprint]);
    expect(b.code).toBe(65);
    expect(b.stdout).toBe('');
  });
});

describe('invalid configuration exits 78, names the field, writes nothing', () => {
  const cases: [string, (base: string) => string, RegExp][] = [
    [
      'unknown key type',
      (b) =>
        `ca: {url: "URL", fingerprint: "FP"}\ncertificate: {domains: [localhost], keyType: ed448, dir: ${b}/tls}\nstateDir: ${b}/state\n`,
      /certificate\.keyType: "ed448" is not allowed; use one of ec-p256/,
    ],
    [
      'no domains',
      (b) => `ca: {url: "URL", fingerprint: "FP"}\ncertificate: {domains: [], dir: ${b}/tls}\nstateDir: ${b}/state\n`,
      /certificate\.domains: must name at least one entry/,
    ],
    [
      'missing domains',
      (b) => `ca: {url: "URL", fingerprint: "FP"}\ncertificate: {dir: ${b}/tls}\nstateDir: ${b}/state\n`,
      /certificate\.domains: is required/,
    ],
    [
      'malformed URL',
      (b) =>
        `ca: {url: "https//ca:9000", fingerprint: "FP"}\ncertificate: {domains: [localhost], dir: ${b}/tls}\nstateDir: ${b}/state\n`,
      /ca\.url: "https\/\/ca:9000" is not a URL/,
    ],
    [
      'http URL',
      (b) =>
        `ca: {url: "http://ca:9000", fingerprint: "FP"}\ncertificate: {domains: [localhost], dir: ${b}/tls}\nstateDir: ${b}/state\n`,
      /ca\.url: .* must use https/,
    ],
    [
      'unknown field',
      (b) =>
        `ca: {url: "URL", fingerprint: "FP"}\ncertificate: {domains: [localhost], dir: ${b}/tls}\nrenewl: {at: 0.5}\nstateDir: ${b}/state\n`,
      /renewl: unknown field/,
    ],
    [
      'bad fingerprint',
      (b) =>
        `ca: {url: "URL", fingerprint: "abc123"}\ncertificate: {domains: [localhost], dir: ${b}/tls}\nstateDir: ${b}/state\n`,
      /ca\.fingerprint\[0\]: "abc123" has 6 hex digits/,
    ],
    ['not YAML', () => `ca: [unclosed\n`, /not valid YAML or JSON/],
  ];
  for (const [name, make, message] of cases) {
    it(name, async () => {
      const base = join(dir, name.replace(/\W/g, '-'));
      const cfgDir = tempDir();
      const file = join(cfgDir, 'config.yaml');
      writeFileSync(file, make(base).replace('URL', ca.url).replace('FP', ca.rootFingerprint));
      const r = await runAgent(['renew', '--config', file]);
      expect(r.code).toBe(78);
      expect(r.stderr).toMatch(message);
      expectOneLine(r.stderr);
      expect(existsSync(base)).toBe(false);
      expect(readdirSync(cfgDir)).toEqual(['config.yaml']);
      rmSync(cfgDir, { recursive: true, force: true });
    });
  }

  it('a valid config that another user owns or can write is refused (78) before anything is touched', async () => {
    const base = join(dir, 'ownership');
    const cfgDir = tempDir();
    const file = join(cfgDir, 'config.yaml');
    const doc =
      `ca: {url: "${ca.url}", fingerprint: "${ca.rootFingerprint}"}\n` +
      `certificate: {domains: [localhost], dir: ${base}/tls}\n` +
      `reload: {target: command, command: [/bin/touch, ${base}-ran]}\nstateDir: ${base}/state\n`;
    writeFileSync(file, doc, { mode: 0o600 });
    const tries: [() => void, RegExp][] = [
      [
        () => chmodSync(file, 0o660),
        /"[^"]+config\.yaml" is owned by uid 0 with mode 0660, writable by group or others;.*chmod go-w /,
      ],
      [
        () => {
          chmodSync(file, 0o600);
          chownSync(file, 65534, 65534);
        },
        /is owned by uid 65534 with mode 0600;.*chown root /,
      ],
      [
        () => {
          chownSync(file, 0, 0);
          chmodSync(cfgDir, 0o775);
        },
        /lies under [^,]+, which is owned by uid 0 with mode 0775, writable by group or others;.*or move the file/,
      ],
    ];
    for (const [make, message] of tries) {
      make();
      const r = await runAgent(['renew', '--config', file]);
      expect(r.code).toBe(78);
      expect(r.stderr).toMatch(message);
      expectOneLine(r.stderr);
      expect(existsSync(base)).toBe(false);
      expect(existsSync(`${base}-ran`)).toBe(false);
      expect(readdirSync(cfgDir)).toEqual(['config.yaml']);
    }
    chmodSync(cfgDir, 0o700);
    rmSync(cfgDir, { recursive: true, force: true });
  });

  it('enroll with a bad flag value exits 64 naming the flag, writes nothing', async () => {
    const base = join(dir, 'badflag');
    const r = await runAgent([
      'enroll',
      '--config',
      join(base, 'config.yaml'),
      '--ca-url',
      ca.url,
      '--fingerprint',
      ca.rootFingerprint,
      '--domain',
      'localhost',
      '--key-type',
      'dsa',
      '--state-dir',
      join(base, 'state'),
    ]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--key-type \(CERT_AGENT_KEY_TYPE\): "dsa" is not allowed/);
    expect(existsSync(base)).toBe(false);
  });

  it('a missing config file is a configuration error (78) that says how to create it', async () => {
    const r = await runAgent(['renew', '--config', join(dir, 'nope.yaml')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/cannot read .*nope\.yaml: ENOENT \(run `cert-agent enroll`/);
  });
});
