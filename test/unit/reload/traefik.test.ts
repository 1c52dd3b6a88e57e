/** The Traefik target's own knowledge: its defaults, its dynamic file, and `doctor`'s view of that file. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateConfig, type Config } from '../../../agent/config/config.js';
import { ACME_ROUTER, traefikDynamicConfig, traefikTarget } from '../../../agent/reload/traefik.js';
import { tempDir } from '../../helpers/agent.js';

let dir: string;
let config: Config;
const file = () => config.reload.traefik.dynamicFile;

beforeAll(() => {
  dir = tempDir('cert-agent-reload-traefik-');
  config = validateConfig({
    ca: { url: 'https://127.0.0.1:9', fingerprint: 'a'.repeat(64) },
    certificate: { domains: ['app.internal'], dir: join(dir, 'tls') },
    challenge: { mode: 'proxy' },
    reload: { target: 'traefik', traefik: { dynamicFile: join(dir, 'dynamic/cert-agent.yml') } },
    stateDir: join(dir, 'state'),
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('traefik target', () => {
  it('brings proxy mode and a handshake on its 443 as defaults', () => {
    expect(traefikTarget.defaults).toEqual({ challengeMode: 'proxy', verify: '127.0.0.1:443' });
  });

  it('routes the challenge path to challenge.listen above every other router in proxy mode', () => {
    const doc = parse(traefikDynamicConfig(config, undefined)) as {
      http: { routers: Record<string, { priority: number; entryPoints: string[] }>; services: unknown };
      tls?: unknown;
    };
    expect(doc.tls).toBeUndefined();
    expect(doc.http.routers[ACME_ROUTER]).toMatchObject({ entryPoints: ['web'], priority: 2147483000 });
    expect(JSON.stringify(doc.http.services)).toContain('http://127.0.0.1:8402');
  });

  it('doctor: a missing dynamic file, one not naming the certificate directory, one that does', async () => {
    expect(await traefikTarget.diagnose(config)).toEqual([
      {
        status: 'PROBLEM',
        reason: 'proxy config',
        message: `${file()} does not exist: run cert-agent renew (it writes it), and have Traefik's file provider watch ${dir}/dynamic`,
      },
    ]);
    mkdirSync(join(dir, 'dynamic'), { recursive: true });
    writeFileSync(file(), 'tls: {}\n');
    const [stale] = await traefikTarget.diagnose(config);
    expect(stale).toMatchObject({ status: 'PROBLEM', message: expect.stringMatching(/does not name files in/) });
    writeFileSync(file(), `tls:\n  certificates:\n    - certFile: ${dir}/tls/sets/x/fullchain.pem\n`);
    const [ok] = await traefikTarget.diagnose(config);
    expect(ok).toMatchObject({
      status: 'ok',
      message: expect.stringContaining(`providers.file.directory ${dir}/dynamic`),
    });
  });
});
