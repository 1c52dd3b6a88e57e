/**
 * reload.target: command — an argv list run without a shell, so an argument
 * with spaces arrives as one argument (unlike `step ca renew --exec`). A
 * non-zero exit or a timeout is a failed reload: it shows in the log, in
 * `status` and in the exit code (unlike certbot's hooks).
 *
 * Every program the agent runs (this command, nginx, update-ca-certificates)
 * goes through runArgv: in a process group of its own, so a timeout ends the
 * program and everything it started, and with a minimal environment, so
 * nothing the agent was started with (tokens, proxies, credentials) leaks
 * into a command that runs as root.
 */
import { spawn } from 'node:child_process';
import type { Config } from '../config/config.js';
import { diagnosis, type Diagnosis } from '../lib/diagnosis.js';
import { ReloadError } from '../lib/errors.js';
import { runningServerUser } from './web-user.js';
import type { ReloadContext, ReloadOutcome, ReloadTarget } from './types.js';

const TAIL = 400;
/** After SIGTERM to the group, this long before SIGKILL. */
const TERM_GRACE_MS = 2_000;
/** After the program exits, this long for its output pipes to drain (a child it left behind may hold them open). */
const DRAIN_MS = 500;
const MAX_OUTPUT = 1024 * 1024;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function tail(text: string): string {
  const t = text.trim().replace(/\s*\n\s*/g, ' | ');
  return t.length > TAIL ? `...${t.slice(-TAIL)}` : t;
}

/** What a child process inherits from the agent: PATH, the locale and the time zone, nothing else. */
export function childEnvironment(extra: Record<string, string> = {}, from = process.env): Record<string, string> {
  const env: Record<string, string> = { PATH: from.PATH || DEFAULT_PATH };
  for (const [name, value] of Object.entries(from)) {
    const kept = name === 'LANG' || name === 'LANGUAGE' || name === 'TZ' || name.startsWith('LC_');
    if (kept && value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  /** Standard output and error together, the tail of it for a message. */
  output: string;
  timedOut: boolean;
  /** With `stdoutLimit`: all of standard output, or undefined when it was longer than that. */
  stdout?: string;
}

export function runArgv(
  argv: string[],
  timeoutSeconds: number,
  env: Record<string, string> = {},
  opts: { stdoutLimit?: number } = {},
): Promise<RunResult> {
  const [file, ...args] = argv;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const out: Buffer[] = [];
    let outSize = 0;
    let timedOut = false;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    // detached: a new session and process group, whose id is the child's pid.
    const child = spawn(file as string, args, {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnvironment(env),
    });
    const collect = (b: Buffer) => {
      if (size < MAX_OUTPUT) chunks.push(b);
      size += b.length;
    };
    child.stdout.on('data', (b: Buffer) => {
      if (opts.stdoutLimit !== undefined && outSize <= opts.stdoutLimit) out.push(b);
      outSize += b.length;
      collect(b);
    });
    child.stderr.on('data', collect);
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // the group is already gone
      }
    };
    const finish = (code: number | null, signal: string | null, extra = '') => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      child.stdout.destroy();
      child.stderr.destroy();
      const output = tail(`${Buffer.concat(chunks).toString('utf8')}\n${extra}`);
      const whole = opts.stdoutLimit !== undefined && outSize <= opts.stdoutLimit;
      resolve({ code, signal, output, timedOut, ...(whole ? { stdout: Buffer.concat(out).toString('utf8') } : {}) });
    };
    timers.push(
      setTimeout(() => {
        timedOut = true;
        killGroup('SIGTERM');
        timers.push(setTimeout(() => killGroup('SIGKILL'), TERM_GRACE_MS));
      }, timeoutSeconds * 1000),
    );
    child.once('error', (err: NodeJS.ErrnoException) => finish(null, null, `${err.code ?? 'error'}: ${err.message}`));
    child.once('exit', (code, signal) => {
      if (timedOut) {
        // Whatever the program started must be gone too before this counts as done.
        killGroup('SIGKILL');
        finish(code, signal);
        return;
      }
      const drain = setTimeout(() => finish(code, signal), DRAIN_MS);
      timers.push(drain);
      child.once('close', () => finish(code, signal));
    });
  });
}

async function reloadCommand({ config, live }: ReloadContext): Promise<ReloadOutcome> {
  const argv = config.reload.command ?? [];
  const result = await runArgv(argv, config.reload.timeoutSeconds, {
    CERT_AGENT_CERT_DIR: config.certificate.dir,
    CERT_AGENT_SERIAL: live.cert.serialNumber.toLowerCase(),
    CERT_AGENT_NOT_AFTER: new Date(live.cert.validTo).toISOString(),
    CERT_AGENT_DOMAINS: config.certificate.domains.join(','),
  });
  const shown = JSON.stringify(argv);
  if (result.timedOut) {
    throw new ReloadError(
      `reload command ${shown} did not finish within ${config.reload.timeoutSeconds}s ` +
        `and was killed with everything it started; output: ${result.output || '(none)'}`,
    );
  }
  if (result.code !== 0) {
    const how = result.signal
      ? `was killed by ${result.signal}`
      : result.code === null
        ? 'could not start'
        : `exited ${result.code}`;
    throw new ReloadError(`reload command ${shown} ${how}; output: ${result.output || '(none)'}`);
  }
  return { detail: `command ${shown} exited 0${result.output ? `; output: ${result.output}` : ''}` };
}

/** `doctor`: an arbitrary command says nothing about which files its consumer reads. */
async function diagnoseCommand(config: Config): Promise<Diagnosis[]> {
  const dir = config.certificate.dir;
  const shown = JSON.stringify(config.reload.command);
  const point = `point it at ${dir}/fullchain.pem and ${dir}/key.pem`;
  return [
    diagnosis('skip', 'proxy config', `reload.command ${shown}: cannot tell which files the consumer reads; ${point}`),
  ];
}

export const commandTarget: ReloadTarget = {
  defaults: { challengeMode: 'standalone' },
  reload: reloadCommand,
  diagnose: diagnoseCommand,
  webServerUser: async () => runningServerUser(),
};
