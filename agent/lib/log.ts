/**
 * Structured logging: pino JSON lines, one event per step, with the same
 * field names throughout (domains, serial, notAfter, attempt, nextRenewal,
 * error). Written synchronously: pino's worker-thread transports do not
 * survive single-file bundling, and a daemon killed mid-pass must not lose
 * the line that says why. Key material is never passed to the logger; the
 * redaction list is a second line of defence.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { fd?: number; level?: string } = {}): Logger {
  return pino(
    {
      base: { name: 'cert-agent' },
      level: opts.level ?? process.env.CERT_AGENT_LOG_LEVEL ?? 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['keyPem', '*.keyPem', 'privateKey', '*.privateKey', 'keyAuthorization', 'accountKey'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: opts.fd ?? 1, sync: true }),
  );
}

/** A logger that drops everything, for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
