/**
 * Disk full: the certificate directory is a small tmpfs, filled up after the
 * first certificate. A forced renewal must fail with a clear error (exit 73),
 * leave the previous set intact and still loadable by a TLS server, and
 * `status` must say why; once space is back, the next renewal works.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, realpathSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { connect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { agentPaths, checkLive, leftovers, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

let ca: StepCa;
let p: AgentPaths;
let mounted = false;
let server: Server | undefined;

beforeAll(async () => {
  ca = await startStepCa();
  p = agentPaths();
  mkdirSync(p.certDir, { mode: 0o700 });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', p.certDir]);
  mounted = true;
  writeConfig(p, ca, ca.acmeHttpPort);
});
afterAll(async () => {
  server?.close();
  if (mounted) execFileSync('umount', [p.certDir]);
  await ca?.cleanup();
  if (p) rmSync(p.dir, { recursive: true, force: true });
});

/** What a consumer does at reload: one resolution of current, both files from that set. */
function loadLive(): { key: string; cert: string } {
  const set = realpathSync(join(p.certDir, 'current'));
  return { key: readFileSync(join(set, 'key.pem'), 'utf8'), cert: readFileSync(join(set, 'fullchain.pem'), 'utf8') };
}

function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.rootPem }, () => {
      resolve(s.getPeerX509Certificate()!.serialNumber.toLowerCase());
      s.end();
    });
    s.once('error', reject);
  });
}

/** Writes until the filesystem refuses; returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 0x61);
  let total = 0;
  try {
    for (let i = 0; i < 100_000; i++) total += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return total;
}

describe('certificate directory on a full tmpfs', () => {
  it('fails with a clear error, keeps and serves the previous set, status says why, recovers', async ({ task }) => {
    const first = await runAgent(['renew', '--config', p.config]);
    expect(first.code, first.stderr).toBe(0);
    const before = checkLive(p.certDir, ca.rootPem);
    expect(before.ok).toBe(true);
    server = createServer(loadLive(), (_req, res) => res.end('ok'));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    expect(await servedSerial(port)).toBe(before.serial);

    const filled = fill(join(p.certDir, 'filler'));
    const r = await runAgent(['renew', '--force', '--config', p.config]);
    expect(r.code).toBe(73);
    // stderr: the JSON log event of the failed pass, then one line for the operator.
    const plain = r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatch(/^cert-agent: cannot write .*ENOSPC: no space left on device/);

    const after = checkLive(p.certDir, ca.rootPem);
    expect(after).toEqual(before);
    const left = leftovers(p.certDir);
    expect(left.tmp).toEqual([]);
    expect(left.sets).toEqual([before.set]);
    // A consumer reloading now gets the previous set, whole.
    server.setSecureContext(loadLive());
    expect(await servedSerial(port)).toBe(before.serial);

    const status = await runAgent(['status', '--json', '--config', p.config]);
    const json = JSON.parse(status.stdout);
    expect(status.code).toBe(1);
    expect(json.renewal.lastAttempt).toMatchObject({ result: 'failed', errorKind: 'store' });
    expect(json.renewal.lastAttempt.error).toContain('no space left on device');
    expect(json.problems.join(' ')).toContain('no space left on device');

    rmSync(join(p.certDir, 'filler'));
    const again = await runAgent(['renew', '--force', '--config', p.config]);
    expect(again.code, again.stderr).toBe(0);
    const recovered = checkLive(p.certDir, ca.rootPem);
    expect(recovered.ok).toBe(true);
    expect(recovered.serial).not.toBe(before.serial);
    record(task, {
      scenario: 'disk full',
      injected: `certificate dir on a 256 KiB tmpfs, filled with ${Math.round(filled / 1024)} KiB, then renew --force`,
      expected: 'clear error; previous set intact and served; status says why',
      observed: `exit ${r.code}: "${plain[0]!.slice(0, 150)}…"; live set unchanged, no half-written set left; TLS server reloaded from disk still serves ${before.serial}; status exit ${status.code}, problem "${(json.problems as string[]).find((x) => x.includes('no space'))!.replace(/: cannot write .*?: /, ': … ')}"; after freeing space renew exit 0`,
    });
  }, 60_000);
});
