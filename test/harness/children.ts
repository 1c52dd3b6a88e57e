/**
 * Child processes that must not outlive the process that started them — CAs
 * holding ports, daemons, proxies, workers: each one registered here is
 * SIGKILLed when this process exits, however it exits (error, Ctrl-C, a
 * failed test), for the tests and the benchmark alike.
 */
import type { ChildProcess } from 'node:child_process';

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
