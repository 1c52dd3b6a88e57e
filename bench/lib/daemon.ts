/** `cert-agent run` as a child process (or an agent instance in a fleet worker), with its JSON log lines parsed as they arrive. */
import { spawn, type ChildProcess } from 'node:child_process';
import { followLog, type LogLine } from '../../test/harness/json-log.js';
import { cleanEnv, track } from './proc.js';

export type { LogLine };

/** The log of one agent: lines in arrival order, and waiting for events. */
export class EventLog {
  readonly lines: LogLine[] = [];
  private listeners: (() => void)[] = [];
  protected gone: string | undefined;

  push(line: LogLine): void {
    this.lines.push(line);
    for (const l of this.listeners) l();
  }

  /** Marks the agent as gone (process exited): waiters fail at once. */
  protected end(why: string): void {
    this.gone = why;
    for (const l of this.listeners) l();
  }

  events(name: string): LogLine[] {
    return this.lines.filter((l) => l.event === name);
  }

  /** Resolves with the events once `count` of them were logged; rejects after timeoutMs or when the agent is gone. */
  waitFor(event: string, count: number, timeoutMs: number): Promise<LogLine[]> {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
      };
      const listener = () => {
        const got = this.events(event);
        if (got.length >= count) {
          cleanup();
          resolve(got);
        } else if (this.gone !== undefined) {
          cleanup();
          reject(new Error(`agent gone (${this.gone}) waiting for ${event}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${count}× ${event}; last lines:\n${this.lines
              .slice(-5)
              .map((l) => JSON.stringify(l))
              .join('\n')}`,
          ),
        );
      }, timeoutMs);
      this.listeners.push(listener);
      listener();
    });
  }
}

export class Daemon extends EventLog {
  stderr = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(bin: string, config: string, cwd: string, nodeFlags: string[] = []) {
    super();
    this.proc = track(
      spawn(process.execPath, [...nodeFlags, bin, 'run', '--config', config], {
        cwd,
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    followLog(this.proc.stdout!, (line) => this.push(line));
    this.proc.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.proc.once('exit', (code, signal) =>
      this.end(`exit ${code ?? signal}: ${this.stderr.trim().split('\n').slice(-2).join(' / ')}`),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(): Promise<number | null> {
    if (this.running) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
