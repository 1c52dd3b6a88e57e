/**
 * Trust refresh against a loopback /roots whose TLS chains to the pinned
 * root: a new root that the pinned root cross-signed comes in (with its
 * cross-certificate); a root nobody vouches for is refused and kept for
 * `status`; at most once an hour unless forced; a CA that cannot be reached
 * is a warning, never an error.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../agent/config/config.js';
import { createLogger } from '../../../agent/lib/log.js';
import { loadTrust, saveTrust } from '../../../agent/trust/file.js';
import { refreshTrust } from '../../../agent/trust/refresh.js';
import { fingerprintOf, leafUnder, makePki, makeRotatedRoot, type Pki } from '../../harness/pki.js';
import { tempDir } from '../../helpers/agent.js';
import { makeCa } from '../../helpers/certs.js';

const NOW = new Date();
let dir: string;
let pki: Pki;
let served: string[] = [];
let url: string;
let server: Server;
const lines: string[] = [];
const log = createLogger({ sink: (line) => lines.push(line), level: 'debug', format: 'json' });
const events = () => lines.map((l) => (JSON.parse(l) as { event?: string }).event);
let n = 0;

/** A state directory bootstrapped from the pinned root `at`, and its config. */
function installation(at = '2026-01-01T00:00:00Z', caUrl = url) {
  const stateDir = join(dir, `state-${++n}`);
  mkdirSync(stateDir);
  const pin = fingerprintOf(pki.rootPem);
  saveTrust(stateDir, { pins: [pin], roots: [{ fingerprint: pin, pem: pki.rootPem }], bootstrappedAt: at });
  const config = validateConfig({
    ca: { url: caUrl, fingerprint: pin },
    certificate: { domains: ['x.internal'] },
    stateDir,
  });
  return { config, stateDir };
}

beforeAll(async () => {
  dir = tempDir('cert-agent-refresh-');
  pki = await makePki(join(dir, 'pki'), 'refresh');
  const tls = await leafUnder(pki.intCrt, pki.intKey, ['127.0.0.1']);
  const cert = tls.certPem + readFileSync(pki.intCrt, 'utf8');
  server = createServer({ key: tls.keyPem, cert }, (_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ crts: served }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('refreshTrust', () => {
  it('takes in a root the pinned root cross-signed, with its cross-certificate, and refuses a stranger', async () => {
    const next = await makeRotatedRoot(pki);
    const stranger = await makeCa('Stranger');
    served = [pki.rootPem, next.rootPem, next.crossPem, stranger.root.pem];
    const { config, stateDir } = installation();
    lines.length = 0;
    const now = new Date(); // not before the cross-certificate's notBefore, which refresh checks
    expect(await refreshTrust(config, now, log)).toEqual([fingerprintOf(next.rootPem)]);
    const bundle = loadTrust(stateDir)!;
    expect(bundle.roots.map((r) => r.fingerprint)).toEqual([fingerprintOf(pki.rootPem), fingerprintOf(next.rootPem)]);
    expect(bundle.roots[1]!.crossPem).toBe(next.crossPem);
    expect(bundle.refreshedAt).toBe(now.toISOString());
    expect(bundle.refused).toEqual([
      {
        fingerprint: stranger.fingerprint,
        subject: 'CN=Stranger Root CA',
        root: true,
        reason: 'a root that matches no pin and is not cross-signed by a trusted root',
      },
    ]);
    expect(events()).toEqual(['trust_roots_added', 'trust_root_refused']);
  });

  it('asks at most once an hour unless forced', async () => {
    served = [pki.rootPem];
    const { config, stateDir } = installation(new Date(NOW.getTime() - 30 * 60_000).toISOString());
    expect(await refreshTrust(config, NOW, log)).toEqual([]);
    expect(loadTrust(stateDir)!.refreshedAt).toBeUndefined();
    await refreshTrust(config, NOW, log, true);
    expect(loadTrust(stateDir)!.refreshedAt).toBe(NOW.toISOString());
  });

  it('a CA it cannot reach is a warning and changes nothing', async () => {
    const { config, stateDir } = installation(undefined, 'https://127.0.0.1:1');
    const before = loadTrust(stateDir);
    lines.length = 0;
    expect(await refreshTrust(config, NOW, log)).toEqual([]);
    expect(events()).toEqual(['trust_refresh_failed']);
    expect(loadTrust(stateDir)).toEqual(before);
  });
});
