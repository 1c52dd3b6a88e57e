/**
 * reload.target: command — an argv list run without a shell, so an argument
 * with spaces arrives as one argument (unlike `step ca renew --exec`). A
 * non-zero exit or a timeout is a failed reload: it shows in the log, in
 * `status` and in the exit code (unlike certbot's hooks).
 */
import { execFile } from 'node:child_process';
import { ReloadError } from '../lib/errors.js';
import type { ReloadContext, ReloadOutcome, ReloadTarget } from './types.js';

const TAIL = 400;

export function tail(text: string): string {
  const t = text.trim().replace(/\s*\n\s*/g, ' | ');
  return t.length > TAIL ? `…${t.slice(-TAIL)}` : t;
}

export function runArgv(argv: string[], timeoutSeconds: number, env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; output: string; timedOut: boolean }> {
  const [file, ...args] = argv;
  return new Promise((resolve) => {
    execFile(file as string, args, { timeout: timeoutSeconds * 1000, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: string }) | null;
      const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
      const spawnError = e && typeof e.code === 'string' ? `${e.code}: ${e.message}` : '';
      resolve({ code, signal: e?.signal ?? null, output: tail(`${stdout}\n${stderr}\n${spawnError}`), timedOut: Boolean(e?.killed && e.signal === 'SIGKILL') });
    });
  });
}

async function reloadCommand({ config, live }: ReloadContext): Promise<ReloadOutcome> {
  const argv = config.reload.command ?? [];
  const result = await runArgv(argv, config.reload.timeoutSeconds, {
    CERT_AGENT_CERT_DIR: config.certificate.dir,
    CERT_AGENT_SERIAL: live.cert.serialNumber.toLowerCase(),
    CERT_AGENT_NOT_AFTER: new Date(live.cert.validTo).toISOString(),
    CERT_AGENT_DOMAINS: config.certificate.domains.join(','),
  });
  const shown = JSON.stringify(argv);
  if (result.timedOut) throw new ReloadError(`reload command ${shown} did not finish within ${config.reload.timeoutSeconds}s and was killed; output: ${result.output || '(none)'}`);
  if (result.code !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : result.code === null ? 'could not start' : `exited ${result.code}`;
    throw new ReloadError(`reload command ${shown} ${how}; output: ${result.output || '(none)'}`);
  }
  return { detail: `command ${shown} exited 0${result.output ? `; output: ${result.output}` : ''}` };
}

export const commandTarget: ReloadTarget = { reload: reloadCommand };
