/**
 * Child processes that must not outlive the process that started them — CAs
 * holding ports, daemons, proxies, workers: each one registered here is
 * SIGKILLed when this process exits, however it exits (error, Ctrl-C, a
 * failed test), for the tests and the benchmark alike.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

export function killOnExit<T extends ChildProcess>(child: T): T {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/**
 * `argv` run so that the child gets SIGKILL when the process that started it
 * dies (setpriv's parent-death signal): 'exit' handlers, killOnExit's
 * included, do not run when a test worker is itself killed or times out.
 */
export function killedWithParent(argv: string[]): string[] {
  return SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : argv;
}
