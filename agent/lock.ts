/**
 * One writer at a time per state directory: `renew` from a shell and the
 * daemon must not install over each other. The lock is a file created with
 * O_EXCL holding the owner's pid; a lock whose process is gone is stale and
 * taken over, so a SIGKILLed agent never blocks the next one.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LockedError, StoreError } from './errors.js';
import { writeNewFile } from './fsutil.js';

export function acquireLock(stateDir: string): () => void {
  const path = join(stateDir, 'lock');
  for (let tries = 0; tries < 3; tries++) {
    try {
      writeNewFile(path, `${process.pid}\n`, 0o600);
      return () => {
        if (ownerOf(path) === process.pid) rmSync(path, { force: true });
      };
    } catch (err) {
      if (!(err instanceof StoreError) || !/EEXIST/.test(err.message)) throw err;
      const owner = ownerOf(path);
      // An empty lock younger than a few seconds is being written right now.
      const fresh = owner === undefined && ageMs(path) < 5_000;
      if (fresh || (owner !== undefined && owner !== process.pid && isAlive(owner))) {
        throw new LockedError(`another cert-agent (pid ${owner ?? 'starting'}) is renewing; try again when it is done`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new LockedError(`cannot take the lock ${path}`);
}

function ownerOf(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
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
