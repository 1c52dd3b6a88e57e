/**
 * The daemon's passes, each in a child process: `cert-agent check` with the
 * daemon's decision in its environment. The resident daemon then never loads
 * the ACME client, TLS, X.509 parsing or the store, and never pages in the
 * code that runs them: it idles at the size of a bare Node with the
 * scheduler, where a daemon that renewed in its own process held 53–60 MiB
 * (BENCHMARKS.md). The child does exactly what a timer-mode pass does
 * (state.json, daemon.pid, metrics textfile) and logs to the same stream.
 *
 * The child's environment: CERT_AGENT_DAEMON_PID (this process; the child
 * checks that it is its parent before writing it to daemon.pid) and
 * CERT_AGENT_CHECK_TRIGGER (why the daemon checks: start, cron, timer,
 * SIGHUP, config file changed). With them the child does not decide again
 * (the daemon has, backoff included) and exits 75 when another cert-agent
 * holds the lock, so the daemon can wait for it.
 */
import { spawn } from 'node:child_process';
import { ExitCode } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { PassRequest, PassRunner } from './daemon.js';

/** How the running program starts itself: the bundle is node + script, the single executable is the program itself. */
function selfCommand(): [string, string[]] {
  const script = process.argv[1];
  const sea = !script || script === process.execPath;
  return [process.execPath, [...process.execArgv, ...(sea ? [] : [script])]];
}

/** A PassRunner that runs each pass as `cert-agent check --config PATH` in a child process. */
export function childProcessPasses(configPath: string, log: Logger): PassRunner {
  return (req: PassRequest) =>
    new Promise((resolve) => {
      const [program, args] = selfCommand();
      const child = spawn(program, [...args, 'check', '--config', configPath], {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, CERT_AGENT_DAEMON_PID: String(process.pid), CERT_AGENT_CHECK_TRIGGER: req.trigger },
      });
      const stop = () => child.kill('SIGTERM');
      req.signal?.addEventListener('abort', stop, { once: true });
      child.once('error', (err) => {
        req.signal?.removeEventListener('abort', stop);
        log.error(
          { event: 'internal_error', error: err.message, trigger: req.trigger },
          'could not start the pass process',
        );
        resolve('failed');
      });
      child.once('exit', (code, signal) => {
        req.signal?.removeEventListener('abort', stop);
        if (code === ExitCode.tempFail) return resolve('locked');
        if (code === ExitCode.ok) return resolve('done');
        log.error(
          { event: 'internal_error', error: `pass process exited with ${signal ?? code}`, trigger: req.trigger },
          'the pass process failed',
        );
        resolve('failed');
      });
    });
}
