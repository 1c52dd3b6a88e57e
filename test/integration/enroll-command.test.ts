/**
 * `--reload command` enrolled from the command line alone, against a real
 * step-ca: enroll with --reload-command (one flag per argument), the first
 * renew runs exactly that argv after the install, and a re-enroll from the
 * hook's variable (a JSON array) changes nothing; renewal.method from a
 * flag or a variable, a value it does not know refused with the config
 * unchanged.
 */
import { existsSync, readFileSync } from 'node:fs';
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

describe('enroll --reload command --reload-command ...', () => {
  it('enrolls, and renew runs the argv without a shell', async () => {
    const config = join(dir, 'config.yaml');
    const marker = join(dir, 'reloaded with spaces');
    const common = [
      'enroll',
      '--config',
      config,
      '--ca-url',
      ca.url,
      '--fingerprint',
      ca.rootFingerprint,
      '-d',
      'localhost',
      '--cert-dir',
      join(dir, 'tls'),
      '--state-dir',
      join(dir, 'state'),
      '--listen',
      `127.0.0.1:${ca.acmeHttpPort}`,
      '--reload',
      'command',
    ];
    const r = await runAgent([...common, '--reload-command', 'touch', '--reload-command', marker]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`reload: command ${JSON.stringify(['touch', marker])}; challenge: standalone`);

    const renew = await runAgent(['renew', '-c', config]);
    expect(renew.stderr).toBe('');
    expect(renew.code).toBe(0);
    expect(renew.stdout).toMatch(
      /^renewed \(no certificate installed\) by an ACME order: .*command \["touch",".*"\] exited 0/,
    );
    expect(existsSync(marker)).toBe(true);
    const state = JSON.parse(readFileSync(join(dir, 'state', 'state.json'), 'utf8'));
    expect(state.reload).toMatchObject({ target: 'command', ok: true });

    const again = await runAgent(common, { env: { CERT_AGENT_RELOAD_COMMAND: JSON.stringify(['touch', marker]) } });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('unchanged:');

    // renewal.method from a flag or the hook's variable; a value it does not know changes nothing.
    const before = readFileSync(config, 'utf8');
    const bad = await runAgent([...common, '--renewal-method', 'sometimes']);
    expect(bad.code).toBe(64);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(
      /--renewal-method \(CERT_AGENT_RENEWAL_METHOD\): "sometimes" is not allowed; use one of auto, acme, step/,
    );
    expect(readFileSync(config, 'utf8')).toBe(before);
    const step = await runAgent(common, { env: { CERT_AGENT_RENEWAL_METHOD: 'step' } });
    expect(step.code, step.stderr).toBe(0);
    expect(readFileSync(config, 'utf8')).toMatch(/^renewal:\n {2}method: step$/m);
    const forced = await runAgent(['renew', '--force', '-c', config]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/^renewed \(forced\) over the CA's renewal API: /);
  }, 120_000);
});
