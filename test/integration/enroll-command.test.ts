/**
 * `--reload command` enrolled from the command line alone, against a real
 * step-ca: enroll with --reload-command (one flag per argument), the first
 * renew runs exactly that argv after the install, and a re-enroll from the
 * hook's variable (a JSON array) changes nothing.
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
    expect(renew.stdout).toMatch(/^renewed \(no certificate installed\): .*command \["touch",".*"\] exited 0/);
    expect(existsSync(marker)).toBe(true);
    const state = JSON.parse(readFileSync(join(dir, 'state', 'state.json'), 'utf8'));
    expect(state.reload).toMatchObject({ target: 'command', ok: true });

    const again = await runAgent(common, { env: { CERT_AGENT_RELOAD_COMMAND: JSON.stringify(['touch', marker]) } });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('unchanged:');
  }, 120_000);
});
