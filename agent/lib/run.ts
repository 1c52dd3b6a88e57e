/**
 * The one way the agent runs a child program (a reload command, nginx,
 * update-ca-certificates): an argv list, never a shell; in a process group
 * of its own, so a timeout ends the program and everything it started; and
 * with a minimal environment, so nothing the agent was started with (tokens,
 * proxies, credentials) leaks into a command that runs as root. And the one
 * way it starts itself (the daemon's passes, spawnSelf): the same program,
 * the same environment, its output on the same stream.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';

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

/** Why a run failed, as the rest of a sentence about the program; undefined when it exited 0. */
export function runFailure(result: RunResult, timeoutSeconds: number): string | undefined {
  const output = `output: ${result.output || '(none)'}`;
  if (result.timedOut)
    return `did not finish within ${timeoutSeconds}s and was killed with everything it started; ${output}`;
  if (result.code === 0) return undefined;
  if (result.signal) return `was killed by ${result.signal}; ${output}`;
  return `${result.code === null ? 'could not start' : `exited ${result.code}`}; ${output}`;
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

/** Whether this is the single executable: Node's own answer (process.argv[1] is the name it was started by, a link included). */
let singleExecutable: boolean | undefined;
function isSingleExecutable(): boolean {
  if (singleExecutable === undefined) {
    try {
      singleExecutable = (createRequire(import.meta.url)('node:sea') as { isSea(): boolean }).isSea();
    } catch {
      singleExecutable = false; // a Node without node:sea has no single executables either
    }
  }
  return singleExecutable;
}

/**
 * The agent itself as a child process with `args` (the bundle is node +
 * script, the single executable the program itself): not a foreign command,
 * so it keeps the environment and writes to the same stdout and stderr;
 * `input` on its stdin. Throws when it cannot be started at all (ENOMEM);
 * other failures arrive as the child's 'error'.
 */
export function spawnSelf(args: string[], input: string): ChildProcess {
  const script = process.argv[1];
  const sea = isSingleExecutable() || !script;
  const self = [...process.execArgv, ...(sea ? [] : [script as string])];
  const child = spawn(process.execPath, [...self, ...args], { stdio: ['pipe', 'inherit', 'inherit'] });
  // A child that dies before reading its stdin must not take the parent with it (EPIPE).
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(input);
  return child;
}
