/**
 * The command line's edges, through the bundle: every command has a help
 * with its defaults and examples; unknown commands and flags are one line
 * on stderr and exit 64 (sysexits EX_USAGE), never a stack trace; output
 * that does not go to a terminal is plain ASCII.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runAgent, tempDir } from '../../helpers/agent.js';

const ASCII = /^[\x00-\x7f]*$/;

const COMMANDS = ['enroll', 'bootstrap', 'renew', 'run', 'check', 'status', 'doctor', 'metrics'];

/** The defaults each command's help states: the values the agent uses when a flag or field is absent. */
const CONFIG_DEFAULT = '(default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)';
const DEFAULTS_SHOWN: Record<string, string[]> = {
  enroll: [
    '--reload TARGET       nginx | traefik | command | none (default none)',
    '--listen HOST:PORT    challenge listener (default 0.0.0.0:80; proxy 127.0.0.1:8402)',
    '--cert-dir DIR        certificate directory (default /etc/cert-agent/tls)',
    '--state-dir DIR       account, trust and state (default /var/lib/cert-agent)',
    '--key-type TYPE       ec-p256 (default) |',
    '--group GROUP         group that reads the certificate files (default root)',
    '--provisioner NAME    step-ca ACME provisioner (default acme)',
    '-c, --config PATH     where to write the config (default /etc/cert-agent/config.yaml)',
  ],
  bootstrap: ['--out FILE          write the PEM here, 0644 (default: print it on stdout)'],
  renew: [CONFIG_DEFAULT],
  run: [CONFIG_DEFAULT, 'CERT_AGENT_LOG_LEVEL (debug, info, warn, error; default info)'],
  check: [CONFIG_DEFAULT, 'CERT_AGENT_LOG_LEVEL (default info)'],
  status: [CONFIG_DEFAULT],
  doctor: [CONFIG_DEFAULT],
  metrics: [CONFIG_DEFAULT],
};

describe('help', () => {
  it.each(COMMANDS)('%s --help: usage, flags with defaults, examples, exit 0', async (command) => {
    const r = await runAgent([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^Usage: cert-agent ${command}`));
    expect(r.stdout).toMatch(/\nExamples?:\n/);
    // bootstrap reads no config file; every other command does.
    if (command !== 'bootstrap') expect(r.stdout).toContain('--config PATH');
    for (const line of DEFAULTS_SHOWN[command] ?? []) expect(r.stdout).toContain(line);
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
    [
      'a string flag without its value',
      ['status', '--config'],
      /status: Option '-c, --config <value>' argument missing/,
    ],
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
    const doctor = await runAgent(['doctor', ...missing]);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/^PROBLEM config +config: cannot read .*ENOENT/);
  });
});

describe('help CMD and short flags', () => {
  it.each(COMMANDS)('cert-agent help %s is the same as its --help and -h', async (command) => {
    const viaHelp = await runAgent(['help', command]);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe((await runAgent([command, '--help'])).stdout);
    expect((await runAgent([command, '-h'])).stdout).toBe(viaHelp.stdout);
  });

  it('help of an unknown command is a usage error', async () => {
    const r = await runAgent(['help', 'renwe']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^cert-agent: help: unknown command "renwe"; commands: enroll, /);
  });

  it("the daemon's internal __pass: in no list, its own help, refused when --daemon-pid is not the parent", async () => {
    expect((await runAgent(['--help'])).stdout).not.toContain('__pass');
    expect((await runAgent(['renwe'])).stderr).not.toContain('__pass');
    expect((await runAgent(['help', '__pass'])).stdout).toMatch(/^Usage: cert-agent __pass .*\(internal\)/);
    const stranger = await runAgent(['__pass', '--daemon-pid', '1'], { input: '{}' });
    expect(stranger.code).toBe(64);
    expect(stranger.stderr).toMatch(/^cert-agent: __pass: internal to the daemon/);
  });

  it('-c is --config, -j is --json, -f is --force, -d is --domain', async () => {
    const status = await runAgent(['status', '-j', '-c', '/nonexistent/c.yaml']);
    expect(status.code).toBe(3);
    expect(JSON.parse(status.stdout).problems[0]).toMatch(/cannot read \/nonexistent\/c\.yaml/);
    const renew = await runAgent(['renew', '-f', '-c', '/nonexistent/c.yaml']);
    expect(renew.code).toBe(78);
    const enroll = await runAgent(['enroll', '-c', join(tempDir(), 'c.yaml'), '-d', 'app.internal']);
    expect(enroll.code).toBe(64);
    expect(enroll.stderr).toMatch(
      /needs --ca-url URL \(CERT_AGENT_CA_URL\), --fingerprint HEX \(CERT_AGENT_FINGERPRINT\) /,
    );
  });

  it('the help documents the short forms', async () => {
    expect((await runAgent(['--help'])).stdout).toContain('-c, --config PATH');
    expect((await runAgent(['help', 'renew'])).stdout).toContain('-f, --force');
    expect((await runAgent(['help', 'status'])).stdout).toContain('-j, --json');
    expect((await runAgent(['help', 'enroll'])).stdout).toContain('-d, --domain NAME');
  });
});

describe('a config this user cannot read', () => {
  it('status: UNKNOWN (3), saying so and what to do', async () => {
    const dir = tempDir(); // 0700 root: the config in it is out of reach for nobody
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'ca: {}\n', { mode: 0o600 });
    const r = await runAgent(['status', '--config', config], { uid: 65534, gid: 65534 });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe(
      `cert-agent UNKNOWN - config: cannot read ${config}: permission denied; run as root (sudo cert-agent status), ` +
        'or for a monitoring user allow exactly that command in sudoers (see docs/monitoring.md)\n',
    );
    const renew = await runAgent(['renew', '--config', config], { uid: 65534, gid: 65534 });
    expect(renew.code).toBe(78);
    expect(renew.stderr).toBe(
      `cert-agent: config: cannot read ${config}: permission denied; run as root (sudo cert-agent renew)\n`,
    );
  });
});

describe('a state this user cannot read', () => {
  it('status: UNKNOWN (3), and to run it as root', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const state = join(dir, 'state');
    mkdirSync(state, { mode: 0o700 });
    writeFileSync(join(state, 'state.json'), '{}\n', { mode: 0o600 });
    const config = join(dir, 'config.yaml');
    const lines = [
      `ca: { url: "https://ca.internal:9000", fingerprint: "${'ab'.repeat(32)}" }`,
      `certificate: { domains: [app.internal], dir: "${join(dir, 'tls')}" }`,
      `stateDir: "${state}"`,
    ];
    writeFileSync(config, lines.join('\n') + '\n', { mode: 0o644 });
    const r = await runAgent(['status', '--config', config], { uid: 65534, gid: 65534 });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^cert-agent UNKNOWN - cannot inspect the installation: .*EACCES/);
    expect(r.stdout).toMatch(/; run as root \(sudo cert-agent status\)\n$/);
  });
});

describe('a config that is not valid YAML', () => {
  it('the error names the line and column', async () => {
    const config = join(tempDir(), 'config.yaml');
    writeFileSync(config, 'ca:\n  url: https://ca.internal:9000\n  fingerprint: [abc\ncertificate:\n', { mode: 0o600 });
    const r = await runAgent(['renew', '--config', config]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(
      new RegExp(`^cert-agent: config: ${config}, line \\d+, column \\d+, is not valid YAML or JSON: \\S`),
    );
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    const status = await runAgent(['status', '--config', config]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/, line \d+, column \d+, is not valid YAML/);
  });
});

describe('metrics without a usable config', () => {
  it('prints cert_agent_status 3 and cert_agent_config_ok 0, exit 0, the reason on stderr', async () => {
    const r = await runAgent(['metrics', '--config', '/nonexistent/cert-agent.yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^cert_agent_status 3$/m);
    expect(r.stdout).toMatch(/^cert_agent_config_ok 0$/m);
    expect(r.stdout).toMatch(/^# TYPE cert_agent_config_ok gauge$/m);
    expect(r.stderr).toMatch(/^cert-agent: config: cannot read \/nonexistent\/cert-agent\.yaml: ENOENT.*\n$/);
  });
});

describe('piped output is plain ASCII', () => {
  const runs: string[][] = [
    ['--help'],
    ['help'],
    ...COMMANDS.map((c) => [c, '--help']),
    ['status', '--config', '/nonexistent/c.yaml'],
    ['status', '--json', '--config', '/nonexistent/c.yaml'],
    ['status', '--line', '--config', '/nonexistent/c.yaml'],
    ['metrics', '--config', '/nonexistent/c.yaml'],
    ['doctor', '--config', '/nonexistent/c.yaml'],
    ['renew', '--config', '/nonexistent/c.yaml'],
    ['enroll', '--config', '/nonexistent/c.yaml'],
    ['bootstrap', '--fingerprint', 'xyz'],
    ['renwe'],
  ];
  it.each(runs.map((args) => [args.join(' '), args] as const))('cert-agent %s', async (_line, args) => {
    const r = await runAgent([...args]);
    expect(r.stdout).toMatch(ASCII);
    expect(r.stderr).toMatch(ASCII);
  });
});
