/**
 * The command line's edges, through the bundle: every command has a help
 * with its defaults and examples; unknown commands and flags are one line
 * on stderr and exit 64 (sysexits EX_USAGE), never a stack trace.
 */
import { describe, expect, it } from 'vitest';
import { runAgent } from '../helpers/agent.js';

const COMMANDS = ['enroll', 'bootstrap', 'renew', 'run', 'check', 'status', 'doctor', 'metrics'];

describe('help', () => {
  it.each(COMMANDS)('%s --help: usage, flags with defaults, examples, exit 0', async (command) => {
    const r = await runAgent([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^Usage: cert-agent ${command}`));
    expect(r.stdout).toMatch(/\nExamples?:\n/);
    // bootstrap reads no config file; every other command does.
    if (command !== 'bootstrap') expect(r.stdout).toContain('--config PATH');
    expect(r.stdout).toMatch(/default/);
  });

  it('the main help lists every command and the exit codes', async () => {
    const r = await runAgent(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`\\n  ${c} +\\S`));
    expect(r.stdout).toContain('64 bad usage');
    expect(r.stdout).toContain('78 bad configuration');
  });

  it('no command prints the help and exits 64', async () => {
    const r = await runAgent([]);
    expect(r.code).toBe(64);
    expect(r.stdout).toContain('Usage: cert-agent <command>');
  });

  it('--version prints the version', async () => {
    const r = await runAgent(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^cert-agent \S+\n$/);
  });
});

describe('bad usage exits 64 with one line', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown command', ['renwe'], /unknown command "renwe"; commands: .*renew.*status/],
    ['an unknown flag of status', ['status', '--jsn'], /status: Unknown option '--jsn'.*cert-agent status --help/],
    ['an unknown flag of doctor', ['doctor', '--repair'], /doctor: Unknown option '--repair'/],
    ['an unknown flag of metrics', ['metrics', '--port', '9100'], /metrics: Unknown option '--port'/],
    ['an unknown flag of renew', ['renew', '-x'], /renew: Unknown option '-x'/],
    ['a positional argument', ['status', 'now'], /status: .*'now'/],
    ['a string flag without its value', ['status', '--config'], /status: Option '--config <value>' argument missing/],
  ];
  it.each(cases)('%s', async (_what, args, message) => {
    const r = await runAgent(args);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^cert-agent: /);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a missing config', () => {
  it('status: UNKNOWN (3); renew, doctor and metrics: exit 78 or a PROBLEM line', async () => {
    const missing = ['--config', '/nonexistent/cert-agent.yaml'];
    const status = await runAgent(['status', ...missing]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/^cert-agent UNKNOWN .*cannot read \/nonexistent\/cert-agent\.yaml: ENOENT/);
    expect((await runAgent(['renew', ...missing])).code).toBe(78);
    expect((await runAgent(['metrics', ...missing])).code).toBe(78);
    const doctor = await runAgent(['doctor', ...missing]);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/^PROBLEM config +config: cannot read .*ENOENT/);
  });
});
