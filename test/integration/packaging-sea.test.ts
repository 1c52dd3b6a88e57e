/**
 * The single executable (`make sea`, Node SEA): it runs with no Node.js and
 * no node_modules anywhere (copied alone into an empty directory, started
 * with an empty PATH), answers --version, issues a certificate from a real
 * step-ca, and runs the daemon, whose passes are the executable started again.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { seaExecutable } from '../harness/rootfs.js';
import { modeOf, selfCheckEnv, tempDir, type RunResult } from '../helpers/agent.js';

const ROOT = resolve(import.meta.dirname, '../..');
let ca: StepCa;
let dir: string;
let exe: string;

beforeAll(async () => {
  dir = tempDir('cert-agent-sea-');
  exe = join(dir, 'bin/cert-agent');
  execFileSync('install', ['-D', '-m', '0755', seaExecutable(), exe]);
  ca = await startStepCa();
}, 120_000);
afterAll(async () => {
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function runSea(args: string[]): Promise<RunResult> {
  return new Promise((done) => {
    // No PATH: the executable must not need a `node` or anything else from it.
    execFile(exe, args, { env: { HOME: dir, ...selfCheckEnv() }, cwd: dir, timeout: 60_000 }, (err, stdout, stderr) => {
      done({
        code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0,
        stdout,
        stderr,
      });
    });
  });
}

describe('single executable (Node SEA)', () => {
  it('answers --version without Node.js on PATH', async () => {
    const version = JSON.parse(execFileSync('cat', [join(ROOT, 'package.json')], { encoding: 'utf8' })).version;
    const r = await runSea(['--version']);
    expect(r).toEqual({ code: 0, stdout: `cert-agent ${version}\n`, stderr: '' });
  });

  it('enrolls and issues a certificate from step-ca', async () => {
    const cfg = join(dir, 'config.yaml');
    const enroll = await runSea([
      'enroll',
      '--config',
      cfg,
      '--ca-url',
      ca.url,
      '--fingerprint',
      ca.rootFingerprint,
      '--domain',
      'localhost',
      '--cert-dir',
      join(dir, 'tls'),
      '--state-dir',
      join(dir, 'state'),
      '--listen',
      `127.0.0.1:${ca.acmeHttpPort}`,
    ]);
    expect(enroll.stderr).toBe('');
    expect(enroll.code).toBe(0);
    const renew = await runSea(['renew', '--config', cfg]);
    expect(renew.stderr).toBe('');
    expect(renew.code).toBe(0);
    writeFileSync(join(dir, 'root.pem'), ca.rootPem);
    const cert = join(dir, 'tls/cert.pem');
    expect(
      execFileSync(
        'openssl',
        ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'tls/chain.pem'), cert],
        { encoding: 'utf8' },
      ).trim(),
    ).toBe(`${cert}: OK`);
    expect(modeOf(join(dir, 'tls/key.pem'))).toBe(0o600);
    const status = await runSea(['status', '--config', cfg]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('cert-agent OK');
  });

  it('runs the daemon started through a link, as /usr/bin/cert-agent is: its pass processes check', async () => {
    // The daemon starts each pass as the executable again; started through a
    // link, the executable must still know it is the program (not a script).
    const cfg = join(dir, 'config.yaml');
    const link = join(dir, 'link/cert-agent');
    mkdirSync(join(dir, 'link'), { recursive: true });
    symlinkSync(exe, link);
    const daemon = spawn(link, ['run', '--config', cfg], {
      env: { HOME: dir, CERT_AGENT_LOG_LEVEL: 'info', ...selfCheckEnv() },
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    daemon.stdout.on('data', (d: Buffer) => (out += d.toString()));
    daemon.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 30_000;
      while (!/"event":"(renewal_not_due|internal_error)"/.test(out) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain('"event":"renewal_not_due"');
      expect(out).not.toContain('internal_error');
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
  }, 60_000);
});
