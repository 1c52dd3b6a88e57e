/**
 * The webroot solver when the document root belongs to another user (as
 * www-data owns `/var/www/html` on many sites): that user can rename what is
 * under it at any moment, so a path checked when the solver opened may lead
 * elsewhere when the token is written or removed. Root must create, replace
 * and delete only inside the directory it checked. The other user here is
 * `nobody`, in a process of its own; the solver runs in this (root) process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openWebrootResponder } from '../../../agent/challenge/webroot.js';
import { AgentError } from '../../../agent/lib/errors.js';
import { testBase } from '../../helpers/agent.js';

const NOBODY = 65534;
let base: string;
let webroot: string;
let victim: string;
let n = 0;

const opts = () => ({ webroot });
const ctx = {
  selfCheckPort: 80,
  names: ['localhost'],
  certificate: 'default',
  stateDir: '/nonexistent',
  commandTimeoutSeconds: 30,
};
const challenge = (i: number) => ({
  type: 'http-01',
  identifier: { type: 'dns' as const, value: 'localhost' },
  token: `token-${String(i).padStart(4, '0')}-abcdefghijklmnop`,
  keyAuthorization: `token-${i}.thumbprint`,
});

/** Runs `code` (JavaScript, `fs` and `dir` in scope) as nobody, in the webroot. */
function asNobody(code: string): void {
  const r = spawnSync(process.execPath, ['-e', `const fs = require('node:fs'); const dir = process.cwd(); ${code}`], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: webroot,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`as nobody: ${r.stderr}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything under a directory, for "nothing appeared here". */
function contents(dir: string): string[] {
  return existsSync(dir) ? (readdirSync(dir, { recursive: true }) as string[]).sort() : ['<gone>'];
}

beforeAll(() => {
  // The suite directory is root's and 0755, so nobody reaches the webroot
  // and the victim, and can write only in the webroot.
  base = mkdtempSync(join(testBase(), 'webroot-swap-'));
  chmodSync(base, 0o755);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

beforeEach(() => {
  const run = join(base, `run-${++n}`);
  mkdirSync(run, { mode: 0o755 });
  chmodSync(run, 0o755);
  webroot = join(run, 'www');
  mkdirSync(webroot, { mode: 0o755 });
  chmodSync(webroot, 0o755);
  chownSync(webroot, NOBODY, NOBODY);
  // A root-owned directory nobody cannot write: whatever appears in it came from root.
  victim = join(run, 'victim');
  mkdirSync(join(victim, 'acme-challenge'), { recursive: true, mode: 0o755 });
});

describe('webroot owned by another user', () => {
  it('a token directory swapped for a symlink after the check: nothing is written where it points', async () => {
    asNobody(`fs.mkdirSync('.well-known/acme-challenge', { recursive: true, mode: 0o755 });`);
    const solver = await openWebrootResponder(opts(), ctx);
    asNobody(
      `fs.renameSync('.well-known/acme-challenge', '.well-known/away');` +
        `fs.symlinkSync(${JSON.stringify(join(victim, 'acme-challenge'))}, '.well-known/acme-challenge');`,
    );
    const outcome = await solver.present(challenge(1)).then(
      () => 'written',
      (err: unknown) => err,
    );
    // Refused with the agent's own error naming the replaced directory, or written where it was checked.
    if (outcome !== 'written') {
      expect(outcome).toBeInstanceOf(AgentError);
      expect((outcome as Error).message).toMatch(/acme-challenge/);
    }
    expect(contents(victim)).toEqual(['acme-challenge']);
    await solver.cleanup(challenge(1));
    await solver.close();
    expect(contents(victim)).toEqual(['acme-challenge']);
    expect(contents(join(webroot, '.well-known/away'))).toEqual([]);
  });

  it('directories the solver created are removed only where it created them', async () => {
    const solver = await openWebrootResponder(opts(), ctx);
    expect(lstatSync(join(webroot, '.well-known/acme-challenge')).uid).toBe(0);
    await solver.present(challenge(2));
    await solver.cleanup(challenge(2));
    // .well-known (root's, in nobody's webroot) renamed away; a symlink to the victim in its place.
    asNobody(`fs.renameSync('.well-known', 'away'); fs.symlinkSync(${JSON.stringify(victim)}, '.well-known');`);
    await solver.close();
    // The victim's empty acme-challenge directory is still there.
    expect(statSync(join(victim, 'acme-challenge')).isDirectory()).toBe(true);
    // What the solver created, wherever it went, it removed: the renamed directory is empty.
    expect(contents(join(webroot, 'away'))).toEqual([]);
  });

  it('a symlink of root in a directory only root can write is followed (an admin link such as /var/www -> /srv/www)', async () => {
    const real = join(webroot, '..', 'real-www');
    mkdirSync(real, { mode: 0o755 });
    chmodSync(real, 0o755);
    const link = join(webroot, '..', 'www-link');
    symlinkSync(real, link);
    webroot = link;
    const solver = await openWebrootResponder(opts(), ctx);
    await solver.present(challenge(3));
    expect(readFileSync(join(real, '.well-known/acme-challenge', challenge(3).token), 'utf8')).toBe(
      'token-3.thumbprint',
    );
    expect(statSync(join(real, '.well-known/acme-challenge', challenge(3).token)).mode & 0o7777).toBe(0o644);
    await solver.close();
    expect(contents(real)).toEqual([]);
  });

  it("a symlink of root in nobody's webroot is refused: nobody could replace it", async () => {
    symlinkSync(victim, join(webroot, '.well-known'));
    await expect(openWebrootResponder(opts(), ctx)).rejects.toThrow(
      new RegExp(`${webroot}/\\.well-known is a symlink in ${webroot}, which uid ${NOBODY} can write`),
    );
    expect(contents(victim)).toEqual(['acme-challenge']);
  });

  it('a continuous swapping loop during 150 present/cleanup rounds: nothing appears outside the webroot', async () => {
    asNobody(`fs.mkdirSync('.well-known/acme-challenge', { recursive: true, mode: 0o755 });`);
    const target = JSON.stringify(join(victim, 'acme-challenge'));
    // Swaps the token directory for a symlink to the victim and back, forever.
    const swapper: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs');
         const d = '.well-known/acme-challenge', away = '.well-known/away';
         const tryIt = (f) => { try { f(); } catch {} };
         for (;;) {
           tryIt(() => fs.renameSync(d, away));
           tryIt(() => fs.symlinkSync(${target}, d));
           for (let i = 0; i < 2000; i++);
           tryIt(() => fs.unlinkSync(d));
           tryIt(() => fs.renameSync(away, d));
         }`,
      ],
      { uid: NOBODY, gid: NOBODY, cwd: webroot, stdio: 'ignore' },
    );
    const outcomes = { written: 0, refused: 0 };
    try {
      await sleep(100);
      for (let i = 0; i < 150; i++) {
        try {
          const solver = await openWebrootResponder(opts(), ctx);
          try {
            // The order's round trips between the check and the write, and before the cleanup.
            await sleep(2);
            await solver.present(challenge(i));
            outcomes.written++;
            await sleep(2);
            await solver.cleanup(challenge(i));
          } finally {
            await solver.close();
          }
        } catch (err) {
          // Refusing is fine; it must be the agent's own error, one line.
          expect(err).toBeInstanceOf(AgentError);
          expect((err as Error).message).not.toContain('\n');
          outcomes.refused++;
        }
      }
    } finally {
      swapper.kill('SIGKILL');
    }
    expect(outcomes.written + outcomes.refused).toBe(150);
    expect(contents(victim)).toEqual(['acme-challenge']);
  }, 60_000);
});
