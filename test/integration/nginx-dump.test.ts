/**
 * `nginx -T` (read by `doctor` for the files nginx uses, and by the http-01
 * self-check for nginx's `user`) runs like every other program the agent
 * starts: with a minimal environment, and bounded in time together with
 * everything it started. The nginx here is a stand-in script that records
 * its environment, prints a configuration, or hangs with a child that keeps
 * its output open (what a wedged nginx or a wrapper script does).
 */
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../agent/config/config.js';
import { nginxTarget } from '../../agent/reload/nginx.js';
import { runAgent, tempDir } from '../helpers/agent.js';

const SECRET = 'CERT_AGENT_TEST_SECRET';
let dir: string;
let nginx: string;
const seen = () => join(dir, 'env-seen');
const hang = () => join(dir, 'hang');
const child = () => join(dir, 'child.pid');

/** Whether the process the stand-in left in child.pid still runs (as a zombie it counts as gone). */
function childRuns(): boolean {
  const pid = readFileSync(child(), 'utf8').trim();
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Ends the stand-in's child if a failing run left it behind. */
function endChild(): void {
  if (!existsSync(child())) return;
  try {
    if (childRuns()) process.kill(Number(readFileSync(child(), 'utf8').trim()), 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

beforeAll(() => {
  dir = tempDir('cert-agent-nginx-dump-');
  nginx = join(dir, 'nginx');
  const certDir = join(dir, 'tls');
  // Not `exec sleep`: the shell's child keeps stdout open after the shell is killed.
  writeFileSync(
    nginx,
    `#!/bin/sh
env > ${seen()}
if [ -e ${hang()} ]; then sleep 120 & echo $! > ${child()}; wait; exit 0; fi
printf 'user www-data;\\nhttp { server { ssl_certificate ${certDir}/fullchain.pem; ssl_certificate_key ${certDir}/key.pem; } }\\n'
`,
  );
  chmodSync(nginx, 0o755);
  const config = {
    ca: { url: 'https://127.0.0.1:9', fingerprint: 'a'.repeat(64) },
    certificate: { domains: ['localhost'], dir: certDir },
    challenge: { mode: 'standalone', listen: '127.0.0.1:18080' },
    reload: { target: 'nginx', nginx: { binary: nginx }, timeout: 2 },
    stateDir: join(dir, 'state'),
  };
  writeFileSync(join(dir, 'config.yaml'), JSON.stringify(config), { mode: 0o600 });
});
/** The config the agent reads, with the stand-in as nginx. */
const nginxConfig = () => validateConfig(JSON.parse(readFileSync(join(dir, 'config.yaml'), 'utf8')));

afterAll(() => {
  endChild();
  rmSync(dir, { recursive: true, force: true });
});

const doctor = () =>
  runAgent(['doctor', '--config', join(dir, 'config.yaml')], { env: { [SECRET]: 'not for nginx' }, timeoutMs: 40_000 });

describe('nginx -T', () => {
  it("doctor: nginx gets PATH and the locale, not the agent's environment", async () => {
    rmSync(hang(), { force: true });
    const r = await doctor();
    expect(r.stdout).toContain(
      `ok      proxy config                nginx uses ${dir}/tls/fullchain.pem, ${dir}/tls/key.pem`,
    );
    const env = readFileSync(seen(), 'utf8');
    expect(env).toMatch(/^PATH=/m);
    expect(env).not.toContain(SECRET);
    expect(env).not.toMatch(/^HOME=/m);
  });

  it('doctor: an nginx that hangs is stopped with what it started after reload.timeout', async () => {
    writeFileSync(hang(), '');
    const started = Date.now();
    const r = await doctor();
    const took = Date.now() - started;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        `^PROBLEM proxy config +cannot read nginx's configuration with ${nginx} -T: did not finish within 2s`,
        'm',
      ),
    );
    expect(took).toBeLessThan(20_000);
    // What it started is gone too.
    expect(childRuns()).toBe(false);
    endChild();
  }, 60_000);

  it("self-check: nginx's user from a clean environment; a hanging nginx is bounded", async () => {
    rmSync(hang(), { force: true });
    rmSync(seen(), { force: true });
    process.env[SECRET] = 'not for nginx';
    try {
      const user = await nginxTarget.webServerUser(nginxConfig());
      if (readFileSync('/etc/passwd', 'utf8').includes('\nwww-data:'))
        expect(user).toMatchObject({ name: 'www-data', source: "nginx's user directive" });
      expect(readFileSync(seen(), 'utf8')).not.toContain(SECRET);
      writeFileSync(hang(), '');
      const started = Date.now();
      await nginxTarget.webServerUser(nginxConfig());
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(childRuns()).toBe(false);
      endChild();
    } finally {
      delete process.env[SECRET];
    }
    expect(existsSync(seen())).toBe(true);
  }, 60_000);
});
