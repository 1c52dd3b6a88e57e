/**
 * reload.target: command, through the bundle against a real step-ca: the
 * argv list reaches the program exactly as written (no shell, no splitting
 * on spaces), with the new serial in its environment; a failing, hanging or
 * missing program fails the pass (exit 1) and shows in `status`.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StepCa } from '../harness/stepca.js';
import { useStepCaSuite } from '../helpers/suite.js';
import { runAgent } from '../helpers/agent.js';

let ca: StepCa;
let dir: string;

useStepCaSuite((c, d) => {
  ca = c;
  dir = d;
});

function configWith(name: string, reload: Record<string, unknown>): string {
  const base = join(dir, name);
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      ca: { url: ca.url, fingerprint: ca.rootFingerprint },
      certificate: { domains: ['localhost'], dir: join(base, 'tls') },
      challenge: { mode: 'standalone', listen: `127.0.0.1:${ca.acmeHttpPort}` },
      reload: { target: 'command', ...reload },
      stateDir: join(base, 'state'),
    }),
  );
  return file;
}

const serialIn = (name: string) =>
  new X509Certificate(readFileSync(join(dir, name, 'tls/cert.pem'))).serialNumber.toLowerCase();

describe('reload.target: command', () => {
  it('passes every argument intact, spaces and shell characters included, with the new serial in the environment', async () => {
    const out = join(dir, 'argv.json');
    const args = ['two words', '  padded  ', `quote's "and" $HOME; echo injected`, '*'];
    const script =
      "require('node:fs').writeFileSync(process.argv[1], JSON.stringify({ args: process.argv.slice(2), serial: process.env.CERT_AGENT_SERIAL, dir: process.env.CERT_AGENT_CERT_DIR }))";
    const config = configWith('ok', { command: [process.execPath, '-e', script, out, ...args] });
    const r = await runAgent(['renew', '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(readFileSync(out, 'utf8'));
    expect(seen.args).toEqual(args);
    expect(seen.serial).toBe(serialIn('ok'));
    expect(seen.dir).toBe(join(dir, 'ok', 'tls'));
    const status = JSON.parse((await runAgent(['status', '--json', '--config', config])).stdout);
    expect(status.reload.lastResult).toMatchObject({ ok: true });
    expect(status.reload.lastResult.detail).toMatch(/exited 0/);
  });

  it('a command that fails: exit 1, its status and output tail in the log and in status; the valid certificate stays', async () => {
    const config = configWith('fails', { command: ['/bin/sh', '-c', 'echo "hook says no" >&2; exit 3'] });
    const r = await runAgent(['renew', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/reload command .* exited 3; output: hook says no/);
    const status = await runAgent(['status', '--json', '--config', config]);
    const doc = JSON.parse(status.stdout);
    expect(status.code).toBe(1);
    expect(doc.status).toBe('WARNING');
    expect(doc.reload.lastResult.ok).toBe(false);
    expect(doc.reload.lastResult.detail).toMatch(/exited 3; output: hook says no/);
    expect(doc.certificate.serial).toBe(serialIn('fails'));
  });

  it('a command that hangs is killed at reload.timeout', async () => {
    const config = configWith('hangs', { command: ['/bin/sleep', '30'], timeout: 1 });
    const started = Date.now();
    const r = await runAgent(['renew', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/did not finish within 1s and was killed/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('a command that does not exist says so', async () => {
    const config = configWith('missing', { command: ['/nonexistent/reload-hook', 'arg'] });
    const r = await runAgent(['renew', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\["\/nonexistent\/reload-hook","arg"\] could not start.*ENOENT/);
  });

  it('at reload.timeout the whole process group goes: a grandchild the command started is killed too', async () => {
    for (const [name, holdsOutput] of [
      ['group', false],
      ['group-pipe', true],
    ] as const) {
      const pidFile = join(dir, `${name}.pid`);
      // The grandchild either lets go of the command's output or keeps it open.
      const redirect = holdsOutput ? '' : ' >/dev/null 2>&1';
      const script = `sleep 300${redirect} & echo $! > ${pidFile}; wait`;
      const config = configWith(name, { command: ['/bin/sh', '-c', script], timeout: 1 });
      const started = Date.now();
      const r = await runAgent(['renew', '--config', config], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(1);
      expect(Date.now() - started).toBeLessThan(15_000);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      expect(pid).toBeGreaterThan(1);
      const left = alive(pid);
      if (left) process.kill(pid, 'SIGKILL');
      expect(left, `grandchild ${pid} of ${name} still runs`).toBe(false);
      expect(r.stderr).toMatch(/did not finish within 1s and was killed with everything it started/);
    }
  });

  it("the command gets PATH, locale, time zone and CERT_AGENT_* variables, not the agent's environment", async () => {
    const out = join(dir, 'env.json');
    const script = "require('node:fs').writeFileSync(process.argv[1], JSON.stringify(process.env))";
    const config = configWith('env', { command: [process.execPath, '-e', script, out] });
    const r = await runAgent(['renew', '--config', config], {
      env: {
        LANG: 'C.UTF-8',
        LC_TIME: 'C',
        TZ: 'UTC',
        API_TOKEN: 'secret-token-value',
        AWS_SECRET_ACCESS_KEY: 'aws-secret',
        HTTPS_PROXY: 'http://127.0.0.1:1',
        CERT_AGENT_UNRELATED: 'x',
      },
    });
    expect(r.code, r.stderr).toBe(0);
    const env = JSON.parse(readFileSync(out, 'utf8')) as Record<string, string>;
    expect(Object.keys(env).sort()).toEqual([
      'CERT_AGENT_CERTIFICATES',
      'CERT_AGENT_CERT_DIR',
      'CERT_AGENT_DOMAINS',
      'CERT_AGENT_NOT_AFTER',
      'CERT_AGENT_SERIAL',
      'LANG',
      'LC_TIME',
      'PATH',
      'TZ',
    ]);
    expect(env).toMatchObject({
      LANG: 'C.UTF-8',
      LC_TIME: 'C',
      TZ: 'UTC',
      PATH: process.env.PATH,
      CERT_AGENT_SERIAL: serialIn('env'),
      CERT_AGENT_DOMAINS: 'localhost',
      CERT_AGENT_CERTIFICATES: 'default',
    });
    expect(JSON.stringify(env)).not.toMatch(/secret|HOME/);
  });
});

/** Whether a process exists and is not a zombie waiting for its parent. */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
