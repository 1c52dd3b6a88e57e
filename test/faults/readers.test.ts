/**
 * Concurrent readers: while forced renewals against a real step-ca swap the
 * live set as fast as they can, reader processes load key and certificate in
 * a tight loop and count pairs that do not belong together.
 *
 * Finding, stated plainly: a reader that opens DIR/key.pem and then
 * DIR/cert.pem resolves `current` twice, and a swap between the two opens
 * gives it the old key with the new certificate. No layout of two separate
 * files can prevent that for such a reader. What the store guarantees is that
 * one resolution of `current` (realpath, then read both files from that set
 * directory) always yields a matching pair, so does one open of
 * combined.pem (key and chain in one file), and a TLS server that loads the
 * pair (nginx, Node, anything on OpenSSL) checks key against certificate and
 * refuses a mixed pair instead of serving it. The agent itself reloads the
 * consumer only after the swap, so its own reloads never straddle one.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { agentPaths, buildFixture, checkLive, sleep, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

const READ_MS = 8_000;
let ca: StepCa;
let p: AgentPaths;

beforeAll(async () => {
  ca = await startStepCa();
  p = agentPaths();
  writeConfig(p, ca, ca.acmeHttpPort);
  const first = await runAgent(['renew', '--config', p.config]);
  expect(first.code, first.stderr).toBe(0);
});
afterAll(async () => {
  await ca?.cleanup();
  if (p) rmSync(p.dir, { recursive: true, force: true });
});

function runProcess(
  file: string,
  args: string[],
  go = false,
): { out: Promise<string>; kill(): void; stdout(): string } {
  const child = spawn(process.execPath, [file, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  if (go) child.stdin!.write('go\n');
  return {
    out: new Promise((r) => child.once('exit', () => r(out))),
    kill: () => child.kill('SIGKILL'),
    stdout: () => out,
  };
}

describe('readers during renewals', () => {
  it('a reader resolving current once, or opening combined.pem, never sees a mismatched pair; a two-open reader can', async ({
    task,
  }) => {
    const [loop, reader] = await Promise.all([buildFixture('renew-loop'), buildFixture('reader')]);
    const renewer = runProcess(loop, [p.config, '100000'], true);
    // Let the renewer get going before the readers start counting.
    for (let i = 0; i < 100 && !renewer.stdout().includes('installed '); i++) await sleep(100);
    const resolved = runProcess(reader, [p.certDir, 'resolved', String(READ_MS)]);
    const twoOpen = runProcess(reader, [p.certDir, 'two-open', String(READ_MS)]);
    const combined = runProcess(reader, [p.certDir, 'combined', String(READ_MS)]);
    const [r, t, c] = (await Promise.all([resolved.out, twoOpen.out, combined.out])).map(
      (o) => JSON.parse(o) as { reads: number; mismatches: number; vanished: number },
    );
    renewer.kill();
    const out = await renewer.out;
    const installs = out.split('\n').filter((l) => l.startsWith('installed ')).length;
    expect(out).not.toContain('failed ');
    expect(installs).toBeGreaterThanOrEqual(10);
    expect(r!.reads).toBeGreaterThan(5_000);
    expect(r!.mismatches).toBe(0);
    expect(t!.reads).toBeGreaterThan(5_000);
    expect(c!.reads).toBeGreaterThan(5_000);
    expect(c!.mismatches).toBe(0);
    expect(checkLive(p.certDir, ca.rootPem).ok).toBe(true);
    record(task, {
      scenario: 'concurrent readers',
      injected: `${installs} forced renewals (real step-ca) while three reader processes load key+cert in a tight loop for ${READ_MS / 1000}s`,
      expected: 'a reader never sees a key and certificate that do not belong together',
      observed: `realpath(current) once, then both files: ${r!.reads} reads, ${r!.mismatches} mismatched (${r!.vanished} retried: set pruned under it); one open of combined.pem: ${c!.reads} reads, ${c!.mismatches} mismatched; two separate opens of key.pem and cert.pem: ${t!.reads} reads, ${t!.mismatches} mismatched${t!.mismatches ? ' (a swap fell between the two opens)' : ''}; TLS loaders refuse a mixed pair, and the agent reloads only after the swap`,
    });
  }, 60_000);
});
