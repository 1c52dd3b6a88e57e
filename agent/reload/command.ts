/**
 * reload.target: command — an argv list run without a shell, so an argument
 * with spaces arrives as one argument (unlike `step ca renew --exec`). A
 * non-zero exit or a timeout is a failed reload: it shows in the log, in
 * `status` and in the exit code (unlike certbot's hooks). The program runs
 * through lib/run.ts, like every other the agent starts.
 */
import type { Config } from '../config/config.js';
import { diagnosis, type Diagnosis } from '../lib/diagnosis.js';
import { ReloadError } from '../lib/errors.js';
import { runArgv, runFailure } from '../lib/run.js';
import { runningServerUser } from './web-user.js';
import type { ReloadContext, ReloadTarget, SetResult } from './types.js';

/**
 * Run once for every certificate that changed in this pass: CERT_AGENT_CERT_DIR,
 * _SERIAL, _NOT_AFTER and _DOMAINS describe the first of them, and
 * CERT_AGENT_CERTIFICATES names all of them (comma-separated).
 */
async function reloadCommand({ config, sets }: ReloadContext): Promise<SetResult[]> {
  const argv = config.reload.command ?? [];
  const first = sets[0] as ReloadContext['sets'][number];
  const result = await runArgv(argv, config.reload.timeoutSeconds, {
    CERT_AGENT_CERT_DIR: first.config.certificate.dir,
    CERT_AGENT_SERIAL: first.live.cert.serialNumber.toLowerCase(),
    CERT_AGENT_NOT_AFTER: new Date(first.live.cert.validTo).toISOString(),
    CERT_AGENT_DOMAINS: first.config.certificate.domains.join(','),
    CERT_AGENT_CERTIFICATES: sets.map((s) => s.config.certificate.name).join(','),
  });
  const shown = JSON.stringify(argv);
  const failure = runFailure(result, config.reload.timeoutSeconds);
  if (failure) throw new ReloadError(`reload command ${shown} ${failure}`);
  const detail = `command ${shown} exited 0${result.output ? `; output: ${result.output}` : ''}`;
  return sets.map(() => ({ detail }));
}

/** `doctor`: an arbitrary command says nothing about which files its consumer reads. */
async function diagnoseCommand(config: Config): Promise<Diagnosis[]> {
  const dir = config.certificate.dir;
  const shown = JSON.stringify(config.reload.command);
  const point = `point it at ${dir}/fullchain.pem and ${dir}/key.pem`;
  return [
    diagnosis('skip', 'proxy config', `reload.command ${shown}: cannot tell which files the consumer reads; ${point}`),
  ];
}

export const commandTarget: ReloadTarget = {
  defaults: { challengeMode: 'standalone' },
  reload: reloadCommand,
  diagnose: diagnoseCommand,
  webServerUser: async () => runningServerUser(),
};
