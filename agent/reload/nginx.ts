/**
 * reload.target: nginx. `nginx -t` first: if nginx refuses the configuration
 * with the new files, the caller restores the previous set and nginx keeps
 * running on it. Then `nginx -s reload`, confirmed by a handshake that serves
 * the new serial (reload.verify).
 */
import { ReloadError } from '../lib/errors.js';
import { runArgv } from '../lib/run.js';
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

/** nginx -T prints the whole configuration, every included file: read all of it, up to this much. */
const DUMP_LIMIT = 32 * 1024 * 1024;

/**
 * `nginx -T`: the configuration nginx would load, for `doctor` (the files it
 * uses) and the self-check (its `user`). Run like every other program, with
 * a minimal environment and bounded in time with what it starts. Either the
 * whole text or one line saying why there is none.
 */
export async function nginxConfigDump(
  nginx: { binary: string; config?: string },
  timeoutSeconds: number,
): Promise<{ text: string } | { problem: string }> {
  const r = await runArgv(
    [nginx.binary, ...(nginx.config ? ['-c', nginx.config] : []), '-T'],
    timeoutSeconds,
    {},
    {
      stdoutLimit: DUMP_LIMIT,
    },
  );
  if (r.timedOut) return { problem: `did not finish within ${timeoutSeconds}s${r.output ? `: ${r.output}` : ''}` };
  if (r.code !== 0) {
    const how = r.signal ? `killed by ${r.signal}` : r.code === null ? 'could not run' : `exit ${r.code}`;
    return { problem: `${how}${r.output ? `: ${r.output}` : ''}` };
  }
  if (r.stdout === undefined) return { problem: `printed more than ${DUMP_LIMIT} bytes` };
  return { text: r.stdout };
}
