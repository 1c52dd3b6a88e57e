/**
 * Running and observing processes: wall time from the parent's clock, peak
 * RSS and CPU from GNU time's rusage, and /proc sampling for long-running
 * daemons.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killOnExit } from '../../test/harness/children.js';

export const GNU_TIME = '/usr/bin/time';
export const CLK_TCK = 100;

export interface Timed {
  code: number;
  wallMs: number;
  /** Peak resident set (KiB) of the process and its waited-for children; NaN without GNU time. */
  maxRssKb: number;
  cpuMs: number;
  stdout: string;
  stderr: string;
}

// Children still running when the driver exits (error, Ctrl-C) are killed,
// so no daemon, proxy or worker outlives a run.
export const track = killOnExit;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Clean environment for peers and the agent: no proxies (all traffic stays on this machine). */
/**
 * The agent's start-up caches, as an installed agent has them under /var/lib/cert-agent:
 * a private directory for this benchmark run (the agents' own state dirs are elsewhere).
 */
let cacheDir: string | undefined;
function agentCacheDir(): string {
  if (!cacheDir) {
    const parent = mkdtempSync(join(tmpdir(), 'cert-agent-bench-cache-'));
    chmodSync(parent, 0o700);
    cacheDir = join(parent, 'code-cache');
  }
  return cacheDir;
}

export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    CERT_AGENT_CACHE_DIR: agentCacheDir(),
  };
  return { ...env, ...extra };
}

export async function timed(
  argv: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<Timed> {
  const haveTime = existsSync(GNU_TIME);
  const dir = mkdtempSync(join(tmpdir(), 'cert-agent-bench-time-'));
  const out = join(dir, 'time');
  const full = haveTime ? [GNU_TIME, '-f', '%M %U %S', '-o', out, ...argv] : argv;
  const started = process.hrtime.bigint();
  const res = await run(full, { env: opts.env ?? cleanEnv(), cwd: opts.cwd ?? tmpdir() }, opts.timeoutMs ?? 120_000);
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  let maxRssKb = NaN;
  let cpuMs = NaN;
  if (haveTime) {
    // GNU time writes "Command exited with non-zero status N" before the format line.
    const line = readFileSync(out, 'utf8').trim().split('\n').pop() ?? '';
    const [rss, user, sys] = line.split(' ').map(Number);
    maxRssKb = rss ?? NaN;
    cpuMs = ((user ?? NaN) + (sys ?? NaN)) * 1000;
  }
  rmSync(dir, { recursive: true, force: true });
  return { ...res, wallMs, maxRssKb, cpuMs };
}

/** The last two lines a failed command wrote, for a failure message. */
export function lastLines(r: Pick<Timed, 'stdout' | 'stderr'>): string {
  return (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' / ');
}

export function run(
  argv: string[],
  opts: SpawnOptions,
  timeoutMs = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = track(spawn(argv[0]!, argv.slice(1), { ...opts, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(err) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}

/** First line of a command's output, or undefined when it cannot run. */
export async function versionOf(argv: string[]): Promise<string | undefined> {
  const r = await run(argv, { env: cleanEnv() }, 20_000);
  if (r.code !== 0) return undefined;
  return (r.stdout || r.stderr).trim().split('\n')[0];
}

export interface ProcSample {
  /** ms since the sampler started */
  t: number;
  rssKb: number;
  /** utime + stime in clock ticks since the process started, with the children it reaped (the daemon's pass processes) */
  ticks: number;
}

export function readProc(pid: number): { rssKb: number; hwmKb: number; ticks: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name in parentheses (which may contain spaces).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, then cutime and cstime: the daemon runs each pass in a child process.
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), ticks };
  } catch {
    return undefined;
  }
}

/** Pids whose command line contains `needle` (e.g. the path of a CA's ca.json). */
export function pidsMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

export function machineLoad(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

/**
 * Resident memory by mapping, from /proc/<pid>/smaps (KiB): the process's
 * own executable (file-backed: its code and read-only data, clean pages the
 * kernel can share and drop), other files (shared libraries), the malloc
 * heap, anonymous memory (the V8 heap and buffers for Node), stacks.
 */
export function rssByMapping(pid: number): Record<string, number> | undefined {
  let text: string;
  let exe: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
  const out: Record<string, number> = {};
  let kind = 'anonymous';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1] ?? '';
      kind = !name
        ? 'anonymous (V8 heap, buffers / Go heap)'
        : name === '[heap]'
          ? 'malloc heap'
          : name.startsWith('[stack')
            ? 'stacks'
            : name.startsWith('[')
              ? 'kernel mappings'
              : name === exe
                ? 'the executable itself (file-backed)'
                : 'other files (shared libraries)';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]);
  }
  return out;
}

/** Busy and total CPU time of the whole machine so far (ms, all cores), from /proc/stat. */
export function machineCpu(): { busyMs: number; totalMs: number } {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
    const busy = user + nice + system + irq + softirq + steal;
    return { busyMs: (busy * 1000) / CLK_TCK, totalMs: ((busy + idle + iowait) * 1000) / CLK_TCK };
  } catch {
    return { busyMs: NaN, totalMs: NaN };
  }
}
