/**
 * The state directory's lock on its own: one holder at a time, a lock left
 * by a dead process or by a pid that now belongs to another process is taken
 * over, damaged locks and stale temp files are cleared, and releasing never
 * removes someone else's lock. Real processes stand in for other agents.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockedError } from '../../../agent/lib/errors.js';
import { acquireLock } from '../../../agent/store/lock.js';
import { nodeEsm, requireBanner } from '../../../bundle/esbuild-options.mjs';
import { tempDir } from '../../helpers/agent.js';

const ROOT = resolve(import.meta.dirname, '../../..');

let dir: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = tempDir('cert-agent-lock-');
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const lockPath = () => join(dir, 'lock');

/** Start time of a process in clock ticks (/proc/PID/stat, field 22). */
function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat
    .slice(stat.lastIndexOf(')') + 1)
    .trim()
    .split(' ');
  return Number(fields[19]);
}

/** A live process that is not this one (another agent, or whoever got a recycled pid). */
function liveProcess(): number {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

/** A pid whose process has exited. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

function age(path: string, seconds: number): void {
  const t = new Date(Date.now() - seconds * 1000);
  utimesSync(path, t, t);
}

describe('acquireLock', () => {
  it('writes our pid and start time into a 0600 lock and removes it on release', () => {
    const release = acquireLock(dir);
    expect(readFileSync(lockPath(), 'utf8')).toBe(`${process.pid} ${startTicks(process.pid)}\n`);
    expect(statSync(lockPath()).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    release();
    expect(existsSync(lockPath())).toBe(false);
  });

  it('refuses while a live agent holds it, naming its pid, and leaves its lock alone', () => {
    const pid = liveProcess();
    const content = `${pid} ${startTicks(pid)}\n`;
    writeFileSync(lockPath(), content, { mode: 0o600 });
    expect(() => acquireLock(dir)).toThrow(LockedError);
    expect(() => acquireLock(dir)).toThrow(new RegExp(`pid ${pid}\\b`));
    expect(readFileSync(lockPath(), 'utf8')).toBe(content);
  });

  it('counts a live pid without a recorded start time as holding the lock', () => {
    const pid = liveProcess();
    writeFileSync(lockPath(), `${pid}\n`, { mode: 0o600 });
    expect(() => acquireLock(dir)).toThrow(LockedError);
  });

  it('takes over the lock of a process that is gone', () => {
    writeFileSync(lockPath(), `${deadPid()} 12345\n`, { mode: 0o600 });
    const release = acquireLock(dir);
    expect(readFileSync(lockPath(), 'utf8').split(' ')[0]).toBe(String(process.pid));
    release();
  });

  it('takes over a lock whose pid now belongs to a different process (other start time)', () => {
    const pid = liveProcess();
    writeFileSync(lockPath(), `${pid} ${startTicks(pid) - 1000}\n`, { mode: 0o600 });
    const release = acquireLock(dir);
    expect(readFileSync(lockPath(), 'utf8').split(' ')[0]).toBe(String(process.pid));
    release();
  });

  it('a second agent process is refused while the first holds the lock, and gets it once released; the refusal names the daemon whose pass holds it', async () => {
    // The holder is another process running the real lock code (bundled on the fly).
    const script = join(dir, 'holder.mjs');
    await build({
      ...nodeEsm,
      stdin: {
        contents:
          `import { acquireLock } from './agent/store/lock.ts';\n` +
          `const release = acquireLock(process.argv[2], Number(process.argv[3]));\n` +
          `process.stdout.write('held\\n');\n` +
          `process.stdin.once('data', () => { release(); process.stdout.write('released\\n'); });\n`,
        resolveDir: ROOT,
        loader: 'ts',
      },
      outfile: script,
      banner: { js: requireBanner },
    });
    // The holder runs a pass for a daemon: this test process plays the daemon.
    const holder = spawn(process.execPath, [script, dir, String(process.pid)], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(holder);
    const said = (word: string) =>
      new Promise<void>((resolve) => {
        const on = (chunk: Buffer) => {
          if (chunk.toString().includes(word)) {
            holder.stdout!.off('data', on);
            resolve();
          }
        };
        holder.stdout!.on('data', on);
      });
    await said('held');
    expect(readFileSync(lockPath(), 'utf8').split(' ')[0]).toBe(String(holder.pid));
    expect(() => acquireLock(dir)).toThrow(`(pid ${holder.pid}, a pass of the daemon pid ${process.pid}) is renewing`);
    const released = said('released');
    holder.stdin!.write('go\n');
    await released;
    const release = acquireLock(dir);
    expect(readFileSync(lockPath(), 'utf8').split(' ')[0]).toBe(String(process.pid));
    release();
  });

  it('waits out a damaged (empty) lock for a moment, then breaks it', () => {
    writeFileSync(lockPath(), '', { mode: 0o600 });
    expect(() => acquireLock(dir)).toThrow(/starting/);
    age(lockPath(), 30);
    const release = acquireLock(dir);
    expect(readFileSync(lockPath(), 'utf8').split(' ')[0]).toBe(String(process.pid));
    release();
  });

  it('does not break a stale lock while another breaker holds the guard, but does once the guard is old', () => {
    writeFileSync(lockPath(), `${deadPid()} 1\n`, { mode: 0o600 });
    writeFileSync(`${lockPath()}.break`, '1\n', { mode: 0o600 });
    expect(() => acquireLock(dir)).toThrow(LockedError);
    expect(existsSync(lockPath())).toBe(true);
    age(`${lockPath()}.break`, 60);
    const release = acquireLock(dir);
    expect(existsSync(`${lockPath()}.break`)).toBe(false);
    release();
  });

  it('sweeps temp files of dead lock takers and keeps those of live ones', () => {
    const dead = join(dir, `lock.${deadPid()}.tmp`);
    const live = join(dir, `lock.${liveProcess()}.tmp`);
    writeFileSync(dead, 'x');
    writeFileSync(live, 'x');
    acquireLock(dir)();
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it('release leaves alone a lock that another agent has taken since', () => {
    const release = acquireLock(dir);
    const pid = liveProcess();
    const theirs = `${pid} ${startTicks(pid)}\n`;
    writeFileSync(lockPath(), theirs);
    release();
    expect(readFileSync(lockPath(), 'utf8')).toBe(theirs);
  });
});
