/**
 * reload.target: nginx. `nginx -t` first: if nginx refuses the configuration
 * with the new files, the caller restores the previous set and nginx keeps
 * running on it. Then `nginx -s reload`, confirmed by a handshake that serves
 * the new serial (reload.verify).
 *
 * nginx owns port 80, so the challenge goes through it (webroot); its
 * configuration (`nginx -T`) tells `doctor` which files it serves and the
 * self-check which user its workers run as.
 */
import type { WebUser } from '../challenge/types.js';
import type { Config } from '../config/config.js';
import { diagnosis, type Diagnosis } from '../lib/diagnosis.js';
import { ReloadError } from '../lib/errors.js';
import { runArgv } from '../lib/run.js';
import type { ReloadContext, ReloadTarget, SetResult } from './types.js';
import { PROXY_VERIFY, verifyEach } from './verify.js';
import { runningServerUser, userNamed } from './web-user.js';

async function reloadNginx({ config, sets }: ReloadContext): Promise<SetResult[]> {
  const { binary, config: confFile } = config.reload.nginx;
  const base = [binary, ...(confFile ? ['-c', confFile] : [])];
  const test = await runArgv([...base, '-t'], config.reload.timeoutSeconds);
  if (test.code !== 0)
    throw new ReloadError(
      `nginx -t failed (${test.code === null ? 'could not run' : `exit ${test.code}`}): ${test.output}`,
      { rollback: true, ...refusedIn(test.output, sets) },
    );
  const reload = await runArgv([...base, '-s', 'reload'], config.reload.timeoutSeconds);
  if (reload.code !== 0)
    throw new ReloadError(
      `nginx -s reload failed (${reload.code === null ? 'could not run' : `exit ${reload.code}`}): ${reload.output}`,
    );
  // Exit 0 only means the signal was delivered: a master that cannot apply
  // the configuration (a port taken, a file unreadable at load time) keeps
  // the old one and says so only in its error log.
  return verifyEach(
    sets,
    'nginx',
    'nginx reloaded',
    "nginx -s reload exits 0 even when the master refuses the new configuration: see nginx's error log",
  );
}

/**
 * Which of several certificates `nginx -t` refused: those whose directory
 * its message names (it names the file it could not load). When it names
 * none of them, it cannot tell: every one is refused.
 */
function refusedIn(output: string, sets: ReloadContext['sets']): { refused?: string[] } {
  if (sets.length < 2) return {};
  const named = sets.filter((s) => output.includes(`${s.config.certificate.dir}/`));
  return named.length ? { refused: named.map((s) => s.config.certificate.name) } : {};
}

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

/** `doctor`: the ssl_certificate and ssl_certificate_key nginx would load must be the agent's. */
async function diagnoseNginx(config: Config): Promise<Diagnosis[]> {
  const dir = config.certificate.dir;
  const { binary } = config.reload.nginx;
  const dump = await nginxConfigDump(config.reload.nginx, config.reload.timeoutSeconds);
  if ('problem' in dump)
    return [
      diagnosis('PROBLEM', 'proxy config', `cannot read nginx's configuration with ${binary} -T: ${dump.problem}`),
    ];
  const paths = [
    ...dump.text.replace(/#[^\n]*/g, '').matchAll(/(?<![\w$])(ssl_certificate(?:_key)?)\s+("?)([^";\s]+)\2\s*;/g),
  ].map((m) => ({ directive: m[1], path: m[3] as string }));
  const ours = paths.filter((p) => p.path.startsWith(`${dir}/`));
  const hasCert = ours.some((p) => p.directive === 'ssl_certificate');
  const hasKey = ours.some((p) => p.directive === 'ssl_certificate_key');
  if (hasCert && hasKey)
    return [diagnosis('ok', 'proxy config', `nginx uses ${[...new Set(ours.map((p) => p.path))].join(', ')}`)];
  const others = [...new Set(paths.filter((p) => !p.path.startsWith(`${dir}/`)).map((p) => p.path))];
  const set = `set ssl_certificate ${dir}/fullchain.pem; and ssl_certificate_key ${dir}/key.pem;`;
  const uses = others.length ? ` (it uses ${others.join(', ')})` : '';
  return [diagnosis('PROBLEM', 'proxy config', `nginx does not use the agent's files: ${set}${uses}`)];
}

/**
 * nginx's `user` directive (from `nginx -T`); without it, an nginx started
 * as root runs its workers as nobody. When the configuration cannot be read,
 * the owner of a running web server.
 */
async function nginxUser(config: Config): Promise<WebUser | undefined> {
  const dump = await nginxConfigDump(config.reload.nginx, 10);
  if ('text' in dump) {
    const m = /^\s*user\s+([^\s;]+)/m.exec(dump.text.replace(/#[^\n]*/g, ''));
    const user = userNamed(m?.[1] ?? 'nobody', m ? "nginx's user directive" : "nginx's default user");
    if (user) return user;
  }
  return runningServerUser();
}

export const nginxTarget: ReloadTarget = {
  defaults: { challengeMode: 'webroot', verify: PROXY_VERIFY },
  reload: reloadNginx,
  diagnose: diagnoseNginx,
  webServerUser: nginxUser,
};
