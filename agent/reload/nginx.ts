/**
 * reload.target: nginx. `nginx -t` first: if nginx refuses the configuration
 * with the new files, the caller restores the previous set and nginx keeps
 * running on it. Then `nginx -s reload`, confirmed by a handshake that serves
 * the new serial (reload.verify).
 */
import { ReloadError } from '../lib/errors.js';
import { runArgv } from './command.js';
import type { ReloadContext, ReloadOutcome, ReloadTarget } from './types.js';
import { verifyServed } from './verify.js';

async function reloadNginx({ config, live }: ReloadContext): Promise<ReloadOutcome> {
  const { binary, config: confFile } = config.reload.nginx;
  const base = [binary, ...(confFile ? ['-c', confFile] : [])];
  const test = await runArgv([...base, '-t'], config.reload.timeoutSeconds);
  if (test.code !== 0)
    throw new ReloadError(
      `nginx -t failed (${test.code === null ? 'could not run' : `exit ${test.code}`}): ${test.output}`,
      { rollback: true },
    );
  const reload = await runArgv([...base, '-s', 'reload'], config.reload.timeoutSeconds);
  if (reload.code !== 0)
    throw new ReloadError(
      `nginx -s reload failed (${reload.code === null ? 'could not run' : `exit ${reload.code}`}): ${reload.output}`,
    );
  // Exit 0 only means the signal was delivered: a master that cannot apply
  // the configuration (a port taken, a file unreadable at load time) keeps
  // the old one and says so only in its error log.
  return verifyServed(
    config.reload.verify,
    config.certificate.domains[0] as string,
    live.cert.serialNumber,
    'nginx',
    'nginx reloaded',
    "nginx -s reload exits 0 even when the master refuses the new configuration: see nginx's error log",
  );
}

export const nginxTarget: ReloadTarget = { reload: reloadNginx };
