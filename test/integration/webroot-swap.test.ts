/**
 * A document root that belongs to another user, through the real agent:
 * the bundled `cert-agent renew` against a real step-ca, the token served by
 * a real nginx (workers www-data), while `nobody`, who owns the webroot,
 * swaps the token directory for a symlink to a root-owned directory it
 * cannot write. Whatever the timing, nothing may appear in that directory:
 * each renewal succeeds or fails with the agent's own one-line error. The
 * tokens are written through /proc/self/fd, so the agent also renews with
 * /proc mounted as the shipped units mount it, and refuses cleanly without.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentPaths, writeConfig, type AgentPaths } from '../faults/common.js';
import type { StepCa } from '../harness/stepca.js';
import { agentBundle, runAgent, selfCheckEnv, testBase, type RunResult } from '../helpers/agent.js';
import { useStepCaSuite } from '../helpers/suite.js';

const NOBODY = 65534;
let ca: StepCa;
let dir: string;
useStepCaSuite((c, d) => {
  ca = c;
  dir = d;
});

let site: string;
let webroot: string;
let victim: string;
let p: AgentPaths;
let nginx: ChildProcess | undefined;
/** Every entry the kernel reports created in the victim directory while the test runs. */
const appeared: string[] = [];
let victimWatch: ReturnType<typeof watch> | undefined;

/** Runs JavaScript as nobody in the webroot (`fs` in scope); its exit status must be 0. */
function asNobody(code: string): void {
  const r = spawnSync(process.execPath, ['-e', `const fs = require('node:fs'); ${code}`], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: webroot,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`as nobody: ${r.stderr}`);
}

/** A long-running script as nobody in the webroot. */
function nobodyLoop(code: string): ChildProcess {
  return spawn(process.execPath, ['-e', `const fs = require('node:fs'); ${code}`], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: webroot,
    stdio: 'ignore',
  });
}

/** The webroot as nobody left it before an attack: a directory `.well-known` of its own, nothing else. */
function resetWebroot(): void {
  asNobody(
    `for (const e of fs.readdirSync('.well-known')) fs.rmSync('.well-known/' + e, { recursive: true, force: true });`,
  );
}

async function renew(): Promise<RunResult> {
  return runAgent(['renew', '--force', '--config', p.config], { timeoutMs: 90_000 });
}

/** `renew --force` of the bundle in a mount namespace of its own (plus `extra`), after `script` prepared it. */
function underUnshare(extra: string[], script: string) {
  const argv = [process.execPath, agentBundle(), 'renew', '--force', '--config', p.config];
  return spawnSync('unshare', ['--mount', '--propagation', 'private', ...extra, '--', 'sh', '-c', script, ...argv], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...selfCheckEnv() },
  });
}

/** A renewal that did not succeed ended with the agent's own error: a documented exit code, no stack trace. */
function succeededOrRefused(r: RunResult): 'renewed' | 'refused' {
  if (r.code === 0) return 'renewed';
  expect([1, 73, 76], r.stderr).toContain(r.code);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  return 'refused';
}

beforeAll(async () => {
  site = mkdtempSync(join(testBase(), 'webroot-swap-site-'));
  chmodSync(site, 0o755);
  webroot = join(site, 'www');
  mkdirSync(webroot, { mode: 0o755 });
  chmodSync(webroot, 0o755);
  chownSync(webroot, NOBODY, NOBODY);
  asNobody(`fs.mkdirSync('.well-known', { mode: 0o755 });`);
  victim = join(site, 'victim');
  mkdirSync(join(victim, 'acme-challenge'), { recursive: true, mode: 0o755 });
  chmodSync(victim, 0o755);
  chmodSync(join(victim, 'acme-challenge'), 0o755);
  victimWatch = watch(join(victim, 'acme-challenge'), (event, name) => appeared.push(`${event} ${name}`));

  const ndir = join(dir, 'nginx');
  mkdirSync(join(ndir, 'tmp'), { recursive: true });
  const tmp = join(ndir, 'tmp');
  writeFileSync(
    join(ndir, 'nginx.conf'),
    `user www-data; worker_processes 1; pid ${ndir}/nginx.pid; error_log ${ndir}/error.log;
events { worker_connections 64; }
http {
  access_log off; client_body_temp_path ${tmp}; proxy_temp_path ${tmp};
  fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  server { listen 127.0.0.1:${ca.acmeHttpPort}; root ${webroot}; }
}
`,
  );
  nginx = spawn('nginx', ['-c', join(ndir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  while (!existsSync(join(ndir, 'nginx.pid'))) {
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${readFileSync(join(ndir, 'error.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  p = agentPaths('cert-agent-webroot-swap-');
  // Each renewal must write its token into the webroot: ACME orders only (renewal.method acme).
  writeConfig(p, ca, ca.acmeHttpPort, { challenge: { mode: 'webroot', webroot }, renewal: { method: 'acme' } });
});

afterAll(async () => {
  victimWatch?.close();
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx?.once('exit', r));
    nginx.kill('SIGTERM');
    await exited;
  }
  if (p) rmSync(p.dir, { recursive: true, force: true });
  if (site) rmSync(site, { recursive: true, force: true });
});

describe('the webroot belongs to nobody, who swaps the token directory for a symlink', () => {
  it('without an attack, the bundled agent renews through nginx (the setup works)', async () => {
    const r = await renew();
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(webroot, '.well-known'))).toEqual([]);
  }, 120_000);

  it('with /proc as the shipped units mount it (ProtectProc=invisible, ProcSubset=pid), it renews too', async () => {
    const script = 'mount -t proc -o hidepid=invisible,subset=pid proc /proc && exec "$0" "$@"';
    const r = underUnshare(['--pid', '--fork'], script);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(join(webroot, '.well-known'))).toEqual([]);
  }, 120_000);

  it('swapped as soon as root creates it (before the token is written): nothing appears in the victim', async () => {
    // inotify tells nobody when root has made acme-challenge; the token
    // follows only after the order's round trips to the CA.
    const target = JSON.stringify(join(victim, 'acme-challenge'));
    const attacker = nobodyLoop(
      `let n = 0;
       fs.watch('.well-known', (event, name) => {
         if (name !== 'acme-challenge') return;
         try {
           const st = fs.lstatSync('.well-known/acme-challenge');
           if (!st.isDirectory() || st.uid !== 0) return;
           fs.renameSync('.well-known/acme-challenge', '.well-known/away-' + ++n);
           fs.symlinkSync(${target}, '.well-known/acme-challenge');
         } catch {}
       });
       setInterval(() => {}, 1000);`,
    );
    const seen: string[] = [];
    appeared.length = 0;
    try {
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < 3; i++) {
        seen.push(succeededOrRefused(await renew()));
        resetWebroot();
      }
    } finally {
      attacker.kill('SIGKILL');
    }
    expect(appeared).toEqual([]);
    expect(readdirSync(join(victim, 'acme-challenge'))).toEqual([]);
    expect(seen).toHaveLength(3);
  }, 300_000);

  it('swapped back and forth continuously during renewals: nothing appears in the victim', async () => {
    asNobody(`fs.mkdirSync('.well-known/acme-challenge', { mode: 0o755 });`);
    const target = JSON.stringify(join(victim, 'acme-challenge'));
    const hold = (ms: number) => `Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${ms})`;
    const swapper = nobodyLoop(
      `const d = '.well-known/acme-challenge', away = '.well-known/away';
       const tryIt = (f) => { try { f(); } catch {} };
       for (;;) {
         tryIt(() => fs.renameSync(d, away));
         tryIt(() => fs.symlinkSync(${target}, d));
         ${hold(3)};
         tryIt(() => fs.unlinkSync(d));
         tryIt(() => fs.renameSync(away, d));
         ${hold(3)};
       }`,
    );
    const seen: string[] = [];
    appeared.length = 0;
    try {
      for (let i = 0; i < 5; i++) seen.push(succeededOrRefused(await renew()));
    } finally {
      swapper.kill('SIGKILL');
    }
    expect(appeared).toEqual([]);
    expect(readdirSync(join(victim, 'acme-challenge'))).toEqual([]);
    expect(seen).toHaveLength(5);
  }, 300_000);

  it('without /proc (a chroot that lacks it): the agent refuses with one line naming the fix, and writes nothing', async () => {
    resetWebroot();
    const before = readdirSync(webroot, { recursive: true });
    const r = underUnshare([], 'mount -t tmpfs none /proc && exec "$0" "$@"');
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /challenge\.mode webroot needs \/proc .*: mount it, or use challenge\.mode standalone or proxy/,
    );
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(readdirSync(webroot, { recursive: true })).toEqual(before);
  }, 120_000);
});
