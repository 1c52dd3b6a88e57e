/**
 * `renew --dry-run` against a real step-ca: the whole path (trust, account,
 * challenge, order, the checks an install makes) runs, and nothing is kept:
 * the live set, the `current` link, state.json, trust and account files are
 * byte for byte what they were, and the exit code says whether renewal
 * would work (a challenge the CA cannot reach fails, with the CA's reason).
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { StepCa } from '../harness/stepca.js';
import { useStepCaSuite } from '../helpers/suite.js';
import { runAgent } from '../helpers/agent.js';
import { enrollAgent, type AgentFiles } from '../helpers/enrolled.js';
import { tryLock } from '../../agent/store/lock.js';

let ca: StepCa;
let base: string;
useStepCaSuite((c, d) => {
  ca = c;
  base = d;
});

async function enroll(name: string): Promise<AgentFiles> {
  return enrollAgent(ca, join(base, name));
}

/** Every file and link under the directories, with its mode and content hash or link target. */
function snapshot(...dirs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string) => {
    if (!existsSync(path)) return;
    const st = lstatSync(path);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[path] = `link ${readlinkSync(path)}`;
    else if (st.isDirectory()) {
      out[path] = `dir ${mode}`;
      for (const entry of readdirSync(path)) walk(join(path, entry));
    } else out[path] = `file ${mode} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
  };
  for (const d of dirs) walk(d);
  return out;
}

describe('renew --dry-run', () => {
  it('with a live certificate: a test order at the CA, checked, nothing kept, exit 0', async () => {
    const p = await enroll('live');
    const first = await runAgent(['renew', '--config', p.config]);
    expect(first.code).toBe(0);
    const before = snapshot(p.certDir, p.stateDir);
    const nextBefore = JSON.parse(readFileSync(join(p.stateDir, 'state.json'), 'utf8')).nextRenewal;
    expect(readlinkSync(join(p.certDir, 'current'))).toBeTruthy();

    const r = await runAgent(['renew', '--dry-run', '--config', p.config]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^dry run: the whole renewal path, nothing kept\n/);
    const issued = /the CA issued serial ([0-9a-f]+) for localhost, valid until \S+Z\n/.exec(r.stdout);
    expect(issued).not.toBeNull();
    expect(r.stdout).toContain('it passes the checks an install makes');
    expect(r.stdout).toMatch(/a real renew would do: nothing: serial [0-9a-f]+ is not due until \S+Z\n$/);
    const installed = readFileSync(join(p.certDir, 'cert.pem'), 'utf8');
    expect(installed).toBeTruthy();
    expect(snapshot(p.certDir, p.stateDir)).toEqual(before);
    expect(JSON.parse(readFileSync(join(p.stateDir, 'state.json'), 'utf8')).nextRenewal).toBe(nextBefore);
    // The CA really issued another certificate: not the live one.
    const { X509Certificate } = await import('node:crypto');
    expect(new X509Certificate(installed).serialNumber.toLowerCase().replace(/^0+/, '')).not.toBe(
      issued![1]!.replace(/^0+/, ''),
    );
  }, 120_000);

  it('before the first certificate: would renew; no certificate, state or account key written', async () => {
    const p = await enroll('fresh');
    const before = snapshot(p.certDir, p.stateDir);
    const r = await runAgent(['renew', '--dry-run', '--config', p.config]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `a real renew would do: renew now (no certificate installed): install a new set in ${p.certDir}, no reload`,
    );
    expect(snapshot(p.certDir, p.stateDir)).toEqual(before);
    expect(existsSync(join(p.stateDir, 'state.json'))).toBe(false);
    expect(existsSync(join(p.certDir, 'cert.pem'))).toBe(false);
  }, 120_000);

  it('a challenge the CA cannot reach: non-zero with the reason, nothing changed', async () => {
    const p = await enroll('unreachable');
    expect((await runAgent(['renew', '--config', p.config])).code).toBe(0);
    const config = parse(readFileSync(p.config, 'utf8'));
    config.challenge = { listen: '127.0.0.1:1' }; // the CA validates on another port
    writeFileSync(p.config, stringify(config), { mode: 0o600 });
    const before = snapshot(p.certDir, p.stateDir);
    const r = await runAgent(['renew', '--dry-run', '--config', p.config]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^cert-agent: .*http-01 validation of localhost failed: .*(connection refused|connect)/im);
    expect(r.stderr).toMatch(/"event":"dry_run_failed"/);
    expect(snapshot(p.certDir, p.stateDir)).toEqual(before);
  }, 120_000);

  it('runs under the lock: another agent holding it means exit 75 and no order', async () => {
    const p = await enroll('locked');
    const release = tryLock(p.stateDir);
    expect(release).toBeDefined();
    try {
      const r = await runAgent(['renew', '--dry-run', '--config', p.config]);
      expect(r.code).toBe(75);
      expect(r.stdout).toBe('');
    } finally {
      release!();
    }
  }, 60_000);
});
