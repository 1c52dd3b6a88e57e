/** doctor's composition: a config it cannot load stops it with one line; the rendering and the exit. */
import { describe, expect, it } from 'vitest';
import { doctorFailed, renderDoctor, runDoctor } from '../../../agent/report/doctor.js';

describe('doctor', () => {
  it('without a valid config, says so and runs nothing else', async () => {
    const lines = await runDoctor('/nonexistent/config.yaml', { fix: false, now: new Date() });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ status: 'PROBLEM', reason: 'config' });
    expect(lines[0]?.message).toMatch(
      /cannot read \/nonexistent\/config\.yaml: ENOENT.*; the other checks need a valid config$/,
    );
    expect(doctorFailed(lines)).toBe(true);
  });

  it('renders one padded line per check and the summary; warnings and fixes do not fail it', () => {
    const lines = [
      { status: 'ok' as const, reason: 'config', message: 'valid' },
      { status: 'WARN' as const, reason: 'outage allowance', message: 'little room' },
      { status: 'FIXED' as const, reason: 'private key', message: 'mode 0644 -> 0600' },
    ];
    expect(renderDoctor(lines)).toBe(
      'ok      config                      valid\n' +
        'WARN    outage allowance            little room\n' +
        'FIXED   private key                 mode 0644 -> 0600\n' +
        'doctor: all good (1 fixed, 1 warning(s))\n',
    );
    expect(doctorFailed(lines)).toBe(false);
    const bad = [...lines, { status: 'PROBLEM' as const, reason: 'CA', message: 'down' }];
    expect(renderDoctor(bad).split('\n').at(-2)).toBe('doctor: 1 problem(s), 1 fixed, 1 warning(s)');
  });
});
