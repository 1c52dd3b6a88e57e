/**
 * The nginx target's own knowledge: its defaults, `doctor`'s view of the
 * files nginx serves (from `nginx -T`), and its workers' user. The nginx
 * here is a stand-in script printing a configuration.
 */
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig, type Config } from '../../../agent/config/config.js';
import { nginxTarget } from '../../../agent/reload/nginx.js';
import { tempDir } from '../../helpers/agent.js';

let dir: string;
let certDir: string;

/** A config whose nginx prints `text` for -T (or exits 1 when text is undefined). */
function withNginx(text: string | undefined): Config {
  const binary = join(dir, `nginx-${Math.random().toString(36).slice(2)}`);
  const body = text === undefined ? 'echo "emerg: broken" >&2; exit 1' : `cat <<'EOF'\n${text}\nEOF`;
  writeFileSync(binary, `#!/bin/sh\n${body}\n`);
  chmodSync(binary, 0o755);
  return validateConfig({
    ca: { url: 'https://127.0.0.1:9', fingerprint: 'a'.repeat(64) },
    certificate: { domains: ['app.internal'], dir: certDir },
    reload: { target: 'nginx', nginx: { binary }, timeout: 5 },
    stateDir: join(dir, 'state'),
  });
}

beforeAll(() => {
  dir = tempDir('cert-agent-reload-nginx-');
  certDir = join(dir, 'tls');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('nginx target', () => {
  it('brings webroot and a handshake on its 443 as defaults', () => {
    expect(nginxTarget.defaults).toEqual({ challengeMode: 'webroot', verify: '127.0.0.1:443' });
  });

  it("doctor: ok when nginx serves the agent's certificate and key", async () => {
    const config = withNginx(
      `server { ssl_certificate ${certDir}/fullchain.pem; ssl_certificate_key "${certDir}/key.pem"; }`,
    );
    expect(await nginxTarget.diagnose(config)).toEqual([
      { status: 'ok', reason: 'proxy config', message: `nginx uses ${certDir}/fullchain.pem, ${certDir}/key.pem` },
    ]);
  });

  it('doctor: names the files nginx uses instead, ignoring comments', async () => {
    const config = withNginx(
      `# ssl_certificate ${certDir}/fullchain.pem;\nserver { ssl_certificate /etc/ssl/old.pem; ssl_certificate_key /etc/ssl/old.key; }`,
    );
    const [line] = await nginxTarget.diagnose(config);
    expect(line).toMatchObject({ status: 'PROBLEM', reason: 'proxy config' });
    expect(line?.message).toBe(
      `nginx does not use the agent's files: set ssl_certificate ${certDir}/fullchain.pem; and ` +
        `ssl_certificate_key ${certDir}/key.pem; (it uses /etc/ssl/old.pem, /etc/ssl/old.key)`,
    );
  });

  it('doctor: an nginx -T that fails is one line with its exit and output', async () => {
    const config = withNginx(undefined);
    const [line] = await nginxTarget.diagnose(config);
    expect(line?.status).toBe('PROBLEM');
    expect(line?.message).toMatch(/^cannot read nginx's configuration with .*nginx-\w+ -T: exit 1: emerg: broken$/);
  });

  it("knows its workers' user from the user directive, and nobody without one", async () => {
    const named = await nginxTarget.webServerUser(withNginx('user root;\nhttp {}'));
    expect(named).toMatchObject({ name: 'root', uid: 0, source: "nginx's user directive" });
    const unnamed = await nginxTarget.webServerUser(withNginx('http {}'));
    if (/^nobody:/m.test(readFileSync('/etc/passwd', 'utf8')))
      expect(unnamed).toMatchObject({ name: 'nobody', source: "nginx's default user" });
  });
});
