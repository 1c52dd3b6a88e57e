/**
 * Entry point: parses flags, dispatches to a command, prints its output and
 * exits with its code. Errors become one line on stderr and a documented
 * exit code; never a stack trace (set CERT_AGENT_DEBUG=1 for one).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONFIG_PATH } from '../config/schema.js';
import { AgentError, ExitCode, UsageError, describeError } from '../lib/errors.js';
import { createLogger, logFormatFor } from '../lib/log.js';
import { HELP } from './help.js';
import {
  bootstrapCommand,
  checkCommand,
  daemonPassCommand,
  doctorCommand,
  enrollCommand,
  metricsCommand,
  renewCommand,
  runCommand,
  statusCommand,
  type CommandContext,
  type CommandResult,
} from './commands.js';

declare const CERT_AGENT_VERSION: string | undefined;
export const VERSION = typeof CERT_AGENT_VERSION === 'string' ? CERT_AGENT_VERSION : '0.0.0-dev';

type Options = NonNullable<ParseArgsConfig['options']>;
const GLOBAL: Options = { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } };
const ENROLL_FLAGS = [
  'ca-url',
  'provisioner',
  'root-file',
  'key-type',
  'cert-dir',
  'owner',
  'group',
  'email',
  'challenge',
  'listen',
  'webroot',
  'reload',
  'verify',
  'state-dir',
  'renewal-method',
  'name',
  'dns-server',
  'dns-zone',
  'tsig-name',
  'tsig-algorithm',
  'tsig-secret-file',
  'dns-propagation-timeout',
];

const COMMANDS: Record<string, { options: Options; run: (ctx: CommandContext) => Promise<CommandResult> }> = {
  enroll: {
    options: {
      ...Object.fromEntries(ENROLL_FLAGS.map((f) => [f, { type: 'string' }])),
      fingerprint: { type: 'string', multiple: true },
      domain: { type: 'string', multiple: true, short: 'd' },
      'reload-command': { type: 'string', multiple: true },
      'dns-command': { type: 'string', multiple: true },
      'allow-unreachable': { type: 'boolean' },
      'vouched-by': { type: 'string' },
    },
    run: enrollCommand,
  },
  bootstrap: {
    options: { 'ca-url': { type: 'string' }, fingerprint: { type: 'string', multiple: true }, out: { type: 'string' } },
    run: bootstrapCommand,
  },
  renew: {
    options: { force: { type: 'boolean', short: 'f' }, 'dry-run': { type: 'boolean' }, name: { type: 'string' } },
    run: renewCommand,
  },
  run: { options: {}, run: runCommand },
  check: { options: {}, run: checkCommand },
  // Internal: the daemon's pass process (help __pass); not in the lists below.
  __pass: { options: { trigger: { type: 'string' }, 'daemon-pid': { type: 'string' } }, run: daemonPassCommand },
  status: {
    options: { json: { type: 'boolean', short: 'j' }, line: { type: 'boolean' }, name: { type: 'string' } },
    run: statusCommand,
  },
  doctor: { options: { fix: { type: 'boolean' }, name: { type: 'string' } }, run: doctorCommand },
  metrics: { options: {}, run: metricsCommand },
};

/** The commands an operator uses; internal ones (`__pass`) are left out of every list. */
const PUBLIC = Object.keys(COMMANDS).filter((c) => !c.startsWith('__'));

export async function main(argv: string[]): Promise<number> {
  const [command = '', ...rest] = argv;
  const early = helpOrVersion(command, rest);
  if (early !== undefined) return early;
  const spec = COMMANDS[command];
  if (!spec)
    return fail(
      new UsageError(
        `unknown command ${JSON.stringify(command)}; commands: ${PUBLIC.join(', ')} (see cert-agent --help)`,
      ),
    );

  let flags: Record<string, unknown>;
  try {
    const parsed = parseArgs({
      args: rest,
      options: { ...GLOBAL, ...spec.options },
      strict: true,
      allowPositionals: false,
    });
    flags = parsed.values as Record<string, unknown>;
  } catch (err) {
    return fail(
      new UsageError(
        `${command}: ${describeError(err).replace(/\. To specify.*$/, '')} (see cert-agent ${command} --help)`,
      ),
    );
  }
  if (flags.help) return print(HELP[command] ?? HELP.main ?? '', 0);

  const ctx: CommandContext = {
    configPath: (flags.config as string | undefined) ?? process.env.CERT_AGENT_CONFIG ?? DEFAULT_CONFIG_PATH,
    flags,
    env: process.env,
    // The daemon and timer mode log to stdout (journald); one-shot commands keep stdout for
    // their answer and log warnings and errors to stderr.
    logger: async () =>
      command === 'run' || command === 'check' || command === '__pass'
        ? createLogger({ fd: 1 })
        : createLogger({ fd: 2, level: process.env.CERT_AGENT_LOG_LEVEL ?? 'warn' }),
    now: () => new Date(),
    isTty: Boolean(process.stdout.isTTY),
  };
  try {
    const result = await spec.run(ctx);
    if (result.stderr) process.stderr.write(result.stderr);
    return print(result.stdout, result.exitCode);
  } catch (err) {
    return fail(err);
  }
}

/** --version, `help <command>`, `help config` and the main help; undefined for anything else. */
function helpOrVersion(command: string, rest: string[]): number | undefined {
  if (command === '--version' || command === 'version') return print(`cert-agent ${VERSION}\n`, 0);
  if (command === 'help' && rest.length) {
    // `cert-agent help renew` is `cert-agent renew --help`.
    const topic = rest[0] as string;
    if (rest.length > 1 || !(COMMANDS[topic] || topic === 'config')) {
      const commands = PUBLIC.join(', ');
      return fail(new UsageError(`help: unknown command ${JSON.stringify(rest.join(' '))}; commands: ${commands}`));
    }
    return print(HELP[topic] ?? '', 0);
  }
  if (!command || command === '--help' || command === '-h' || command === 'help')
    return print(HELP.main as string, command ? 0 : ExitCode.usage);
  return undefined;
}

function print(text: string, code: number): number {
  process.stdout.write(text);
  return code;
}

function fail(err: unknown): number {
  const code = err instanceof AgentError ? err.exitCode : ExitCode.failure;
  // Under systemd (a timer, a oneshot unit) the error is an error in the journal too.
  const priority = logFormatFor(2) === 'journal' ? '<3>' : '';
  process.stderr.write(`${priority}cert-agent: ${describeError(err)}\n`);
  if (process.env.CERT_AGENT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.exitCode = fail(err);
  },
);
