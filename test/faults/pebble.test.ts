/**
 * Bad nonces, from Pebble (Let's Encrypt's strict test server), which
 * rejects a configurable share of valid nonces on purpose. Through a relay
 * that counts the badNonce answers: with a fifth rejected, every renewal
 * still succeeds (the client retries with a fresh nonce); with all of them
 * rejected, the renewal fails with a clear error in bounded time and the
 * certificate stays.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, makeOtherCa } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { agentPaths, checkLive, plainLines, sleep, snapshot } from './common.js';
import { startCountingProxy, type CountingProxy } from './hostile-servers.js';
import { record } from './table.js';

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

interface Pebble {
  proxy: CountingProxy;
  issuingRootPem: string;
  httpPort: number;
}

async function startPebble(rejectPercent: number): Promise<Pebble> {
  const dir = tempDir('cert-agent-pebble-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const tls = await makeOtherCa();
  const leaf = await tls.issue(['localhost', '127.0.0.1']);
  writeFileSync(join(dir, 'cert.pem'), leaf.certPem + leaf.chainPem);
  writeFileSync(join(dir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
  const [port, mgmt, httpPort, tlsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: join(dir, 'cert.pem'),
        privateKey: join(dir, 'key.pem'),
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: String(rejectPercent),
    PEBBLE_AUTHZREUSE: '0',
  };
  const child: ChildProcess = spawn('pebble', ['-config', join(dir, 'pebble.json')], {
    cwd: dir,
    env,
    stdio: 'ignore',
  });
  cleanups.push(() => child.kill('SIGKILL'));
  let roots: { status: number; body: string } | undefined;
  for (let i = 0; i < 100 && roots?.status !== 200; i++) {
    await sleep(100);
    roots = await get(`https://127.0.0.1:${mgmt}/roots/0`).catch(() => undefined);
  }
  expect(roots?.status, 'pebble did not start').toBe(200);
  const proxy = await startCountingProxy(port, tls.rootPem);
  cleanups.push(() => proxy.close());
  return { proxy, issuingRootPem: roots!.body, httpPort };
}

/** An agent for Pebble: its directory, and a root file holding the relay's TLS root and Pebble's issuing root. */
function agentFor(pb: Pebble) {
  const p = agentPaths();
  cleanups.push(() => rmSync(p.dir, { recursive: true, force: true }));
  const rootFile = join(p.dir, 'roots.pem');
  writeFileSync(rootFile, pb.proxy.rootPem + pb.issuingRootPem);
  writeFileSync(
    p.config,
    JSON.stringify({
      ca: { url: pb.proxy.url, directory: `${pb.proxy.url}/dir`, rootFile },
      certificate: { domains: ['localhost'], dir: p.certDir },
      challenge: { mode: 'standalone', listen: `127.0.0.1:${pb.httpPort}` },
      stateDir: p.stateDir,
    }),
    { mode: 0o600 },
  );
  return { p, issuingRootPem: pb.issuingRootPem };
}

describe('Pebble rejecting nonces', () => {
  it('a fifth of nonces rejected: every renewal still succeeds; all rejected: clear error, certificate kept', async ({
    task,
  }) => {
    const lenient = await startPebble(20);
    const a = agentFor(lenient);
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await runAgent(['renew', '--force', '--config', a.p.config]);
      expect(r.code, r.stderr).toBe(0);
      codes.push(r.code);
      expect(checkLive(a.p.certDir, a.issuingRootPem).ok).toBe(true);
    }
    expect(lenient.proxy.badNonces).toBeGreaterThan(0);

    // Every nonce rejected: the same container, now facing a Pebble that never accepts one.
    const strict = await startPebble(100);
    const s = agentFor(strict);
    const r0 = await runAgent(['renew', '--force', '--config', s.p.config]);
    expect(r0.code).not.toBe(0); // no certificate can be had at all...
    // ...so give it the one issued by the lenient Pebble and check it is kept.
    rmSync(s.p.certDir, { recursive: true, force: true });
    rmSync(s.p.stateDir, { recursive: true, force: true });
    cpSync(a.p.certDir, s.p.certDir, { recursive: true, verbatimSymlinks: true });
    const before = snapshot(s.p.certDir);
    const started = Date.now();
    const r = await runAgent(['renew', '--force', '--config', s.p.config]);
    const secs = (Date.now() - started) / 1000;
    const plain = plainLines(r.stderr);
    expect(r.code).toBe(76);
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatch(/badNonce/);
    expect(secs).toBeLessThan(20);
    expect(snapshot(s.p.certDir)).toEqual(before);
    record(task, {
      scenario: 'CA: bad nonces (Pebble)',
      injected: 'Pebble rejecting 20 % of valid nonces (4 forced renewals), then 100 %',
      expected: 'retried transparently; when hopeless, a clear error in bounded time, certificate kept',
      observed: `20 %: ${lenient.proxy.badNonces} badNonce answers over ${lenient.proxy.requests} requests, renewals exit ${codes.join(', ')}; 100 %: exit ${r.code} after ${secs.toFixed(1)} s: "${plain[0]!.slice(0, 100)}", certificate dir untouched`,
    });
  }, 120_000);
});
