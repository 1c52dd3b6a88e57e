/**
 * The daemon's passes, each in a child process: `cert-agent __pass`, an
 * internal command that runs one pass as the daemon decided it. The resident
 * daemon then never loads the ACME client, TLS, X.509 parsing or the store,
 * and never pages in the code that runs them: it idles at the size of a bare
 * Node with the scheduler, where a daemon that renewed in its own process
 * held 53-60 MiB (BENCHMARKS.md). The child does exactly what a timer-mode
 * pass does (state.json, daemon.pid, metrics textfile) and logs to the same
 * stream.
 *
 * The child's arguments: --trigger (why the daemon checks: start, cron,
 * timer, SIGHUP, config file changed) and --daemon-pid (this process; the
 * child checks that it is its parent before writing it to daemon.pid). Its
 * stdin: the daemon's configuration as JSON, so a pass uses what the daemon
 * uses (the previous configuration when a reload found the file invalid; the
 * child still checks the paths it names). The child does not decide again
 * (the daemon has, backoff included) and exits 75 when another cert-agent
 * holds the lock, so the daemon can wait for it.
 */
import type { ChildProcess } from 'node:child_process';
import { ExitCode, describeError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { spawnSelf } from '../lib/run.js';
import type { PassRequest, PassRunner } from './daemon.js';

/** A PassRunner that runs each pass as `cert-agent __pass` in a child process. */
export function childProcessPasses(log: Logger): PassRunner {
  return (req: PassRequest) =>
    new Promise((resolve) => {
      const failed = (error: string, msg: string) => {
        log.error({ event: 'internal_error', error, trigger: req.trigger }, msg);
        resolve('failed');
      };
      let child: ChildProcess;
      try {
        const pass = ['__pass', '--trigger', req.trigger, '--daemon-pid', String(process.pid)];
        child = spawnSelf(pass, JSON.stringify(req.config));
      } catch (err) {
        // Thrown rather than emitted (e.g. ENOMEM): this check fails, the daemon goes on.
        return failed(describeError(err), 'could not start the pass process');
      }
      const stop = () => child.kill('SIGTERM');
      req.signal.addEventListener('abort', stop, { once: true });
      child.once('error', (err) => {
        req.signal.removeEventListener('abort', stop);
        failed(err.message, 'could not start the pass process');
      });
      child.once('exit', (code, signal) => {
        req.signal.removeEventListener('abort', stop);
        if (code === ExitCode.tempFail) return resolve('locked');
        if (code === ExitCode.ok) return resolve('done');
        // Stopped by the daemon itself (it is stopping): not an error of the pass.
        if (req.signal.aborted) return resolve('failed');
        failed(`pass process exited with ${signal ?? code}`, 'the pass process failed');
      });
    });
}
