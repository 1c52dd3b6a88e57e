/**
 * One writer at a time per state directory: `renew` from a shell and the
 * daemon must not install over each other. The lock is a file created with
 * O_EXCL holding the owner's pid and its start time; a lock whose process is
 * gone is stale and taken over, so a SIGKILLed agent never blocks the next
 * one. The start time matters after a container restart: the lock survives
 * in the state directory while pids start again from 1, so the recorded pid
 * may now belong to some other live process, which must not hold the lock.
 */
import { linkSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LockedError, StoreError } from '../lib/errors.js';
import { writeNewFile } from '../lib/fs.js';
import { LOCK_FILE, PATHS } from './layout.js';
import { storeDirectoryProblem } from '../config/path-safety.js';

interface Owner {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/PID/stat field 22), when known. */
  start?: number;
  /** The daemon whose pass this process is (`daemon=PID` in the file), so a refusal can name it. */
  daemon?: number;
}

/** Who holds the lock, for the refusal: the pid, and the daemon when the holder is one of its passes. */
function holderOf(owner: Owner | undefined): string {
  if (!owner) return 'starting';
  return owner.daemon ? `${owner.pid}, a pass of the daemon pid ${owner.daemon}` : String(owner.pid);
}

/** Takes the lock, or returns undefined when another live agent holds it (nothing is written then). */
export function tryLock(stateDir: string): (() => void) | undefined {
  try {
    return acquireLock(stateDir);
  } catch (err) {
    if (err instanceof LockedError) return undefined;
    throw err;
  }
}

/** Takes the lock, waiting up to `waitMs` for a holder to finish (a pass takes seconds); LockedError after that. */
export async function acquireLockWaiting(stateDir: string, waitMs: number): Promise<() => void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const release = tryLock(stateDir);
    if (release) return release;
    if (Date.now() >= deadline) return acquireLock(stateDir);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `daemonPid`: the daemon this process runs a pass for, written into the lock so others can name it. */
export function acquireLock(stateDir: string, daemonPid?: number): () => void {
  const path = join(stateDir, LOCK_FILE);
  // The first write into the state directory (enroll's, doctor --fix's too): not where another user could redirect it.
  const unsafe = storeDirectoryProblem(stateDir, 'state');
  if (unsafe) throw new StoreError(`stateDir ${JSON.stringify(stateDir)} ${unsafe}; nothing was written`);
  sweepTemps(stateDir);
  // The lock appears with its content or not at all: written to a temp file,
  // then link(2)ed into place (which fails if a lock exists). An agent killed
  // at any moment never leaves an empty lock that would look "just created".
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  // Not fsynced: after a power cut an empty lock is stale anyway (held()).
  const daemon = daemonPid !== undefined && daemonPid !== process.pid ? ` daemon=${daemonPid}` : '';
  writeNewFile(tmp, `${process.pid} ${startTicks(process.pid) ?? ''}${daemon}\n`, PATHS.lock.mode({}), false);
  try {
    for (let tries = 0; tries < 3; tries++) {
      try {
        linkSync(tmp, path);
        return () => {
          if (ownerOf(path)?.pid === process.pid) rmSync(path, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new StoreError(`cannot take the lock ${path}: ${(err as Error).message}`);
        const owner = ownerOf(path);
        if (held(path, owner)) {
          throw new LockedError(`another cert-agent (pid ${holderOf(owner)}) is renewing; try again when it is done`);
        }
        breakStale(path, owner);
      }
    }
    throw new LockedError(`cannot take the lock ${path}`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Temp files of lock attempts whose process is gone (killed between write and link). */
function sweepTemps(stateDir: string): void {
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^lock\.(\d+)\.tmp$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]))) rmSync(join(stateDir, name), { force: true });
  }
}

/** Whether the lock file naming `owner` belongs to a live agent. */
function held(path: string, owner: Owner | undefined): boolean {
  // Locks are linked in with their content, so an unreadable one is damage
  // (e.g. a full disk); give it a moment in case a reader raced a writer.
  if (!owner) return ageMs(path) < 5_000;
  if (owner.pid === process.pid || !isAlive(owner.pid)) return false;
  const now = startTicks(owner.pid);
  return owner.start === undefined || now === undefined || now === owner.start;
}

/**
 * Removes a stale lock, one breaker at a time: two agents that find the same
 * stale lock must not each remove it and then the other's new one. The
 * guard file serialises breakers; a guard left by a killed breaker expires.
 */
function breakStale(path: string, stale: Owner | undefined): void {
  const guard = `${path}.break`;
  try {
    writeNewFile(guard, `${process.pid}\n`, PATHS.lock.mode({}), false);
  } catch {
    if (ageMs(guard) > 10_000) rmSync(guard, { force: true });
    return; // someone else is breaking it; try the lock again
  }
  try {
    const owner = ownerOf(path);
    if (owner?.pid === stale?.pid && owner?.start === stale?.start && !held(path, owner)) rmSync(path, { force: true });
  } finally {
    rmSync(guard, { force: true });
  }
}

function ownerOf(path: string): Owner | undefined {
  try {
    const [pidText, ...rest] = readFileSync(path, 'utf8').trim().split(/\s+/);
    const pid = Number(pidText);
    const startText = rest.find((t) => /^\d+$/.test(t));
    const daemon = Number(/^daemon=(\d+)$/.exec(rest.find((t) => t.startsWith('daemon=')) ?? '')?.[1]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return {
      pid,
      ...(startText !== undefined ? { start: Number(startText) } : {}),
      ...(daemon > 0 ? { daemon } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Clock ticks since boot at which `pid` started; undefined off Linux or when unreadable. */
function startTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, starttime field 22.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isInteger(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return Infinity;
  }
}
