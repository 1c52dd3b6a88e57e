/** `cert-agent run` as a child process, with its JSON log lines parsed as they arrive. */
import { spawn, type ChildProcess } from 'node:child_process';
import { cleanEnv } from './proc.js';

export interface LogLine {
  event?: string;
  time: string;
  [key: string]: unknown;
}

export class Daemon {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  private listeners: ((l: LogLine) => void)[] = [];

  constructor(bin: string, config: string, cwd: string) {
    this.proc = spawn(process.execPath, [bin, 'run', '--config', config], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { event: 'unparsed', time: new Date().toISOString(), text };
        }
        this.lines.push(line);
        for (const l of this.listeners) l(line);
      }
    });
    this.proc.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  events(name: string): LogLine[] {
    return this.lines.filter((l) => l.event === name);
  }

  /** Resolves with the events once `count` of them were logged; rejects after timeoutMs or when the daemon exits. */
  waitFor(event: string, count: number, timeoutMs: number): Promise<LogLine[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const got = this.events(event);
        if (got.length >= count) {
          cleanup();
          resolve(got);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count}× ${event}; last lines:\n${this.lines.slice(-5).map((l) => JSON.stringify(l)).join('\n')}\n${this.stderr}`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(new Error(`daemon exited waiting for ${event}: ${this.stderr}`));
      };
      const listener = () => void check();
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
        this.proc.off('exit', onExit);
      };
      this.listeners.push(listener);
      this.proc.once('exit', onExit);
      check();
    });
  }

  async stop(): Promise<number | null> {
    if (this.running) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
