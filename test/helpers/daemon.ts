/**
 * Runs `cert-agent run` from the bundle as its own process and collects its
 * JSON log lines, so tests can wait for events the way an operator reads
 * journald.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { followLog, type LogLine } from '../harness/json-log.js';
import { agentBundle, selfCheckEnv } from './agent.js';

export type { LogLine };

export class DaemonProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private readonly proc: ChildProcess;
  private exit: Promise<number | null>;
  private waiters: (() => void)[] = [];

  /** `umask`: the process's file-creation mask, e.g. 0o077 as systemd's UMask= sets it (default: inherited). */
  constructor(configPath: string, env: Record<string, string> = {}, opts: { umask?: number } = {}) {
    const argv = [process.execPath, agentBundle(), 'run', '--config', configPath];
    const umask = opts.umask?.toString(8).padStart(4, '0');
    const [cmd, ...args] = umask === undefined ? argv : ['/bin/sh', '-c', `umask ${umask}; exec "$@"`, 'sh', ...argv];
    this.proc = spawn(cmd as string, args, {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...selfCheckEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    followLog(this.proc.stdout!, (line) => {
      this.lines.push(line);
      for (const w of this.waiters.splice(0)) w();
    });
    this.proc.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString()));
    this.exit = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  events(name: string): LogLine[] {
    return this.lines.filter((l) => l.event === name);
  }

  /** Resolves when `count` lines with `event` have been logged. */
  async waitFor(event: string, count = 1, timeoutMs = 60_000): Promise<LogLine[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events(event).length < count) {
      if (Date.now() > deadline || this.proc.exitCode !== null) {
        throw new Error(
          `${this.proc.exitCode !== null ? `daemon exited ${this.proc.exitCode}` : 'timed out'} waiting for ${count}× ${event}; log:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr.join('')}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 500);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.events(event);
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  /** SIGTERM and the exit code. */
  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    return this.exit;
  }
}
