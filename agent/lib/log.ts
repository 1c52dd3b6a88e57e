/**
 * Structured logging: pino JSON lines, one event per step, with the same
 * field names throughout (domains, serial, notAfter, attempt, nextRenewal,
 * error). Written synchronously: pino's worker-thread transports do not
 * survive single-file bundling, and a daemon killed mid-pass must not lose
 * the line that says why. Key material is never passed to the logger; the
 * redaction list is a second line of defence.
 *
 * Under systemd the output is a journal stream, which takes every line at the
 * unit's default priority unless the line starts with a syslog-style "<N>"
 * (sd-daemon(3); journald strips it, SyslogLevelPrefix= is on by default).
 * So when the file descriptor is that stream (JOURNAL_STREAM names its
 * device and inode) each JSON line gets its level as a prefix, and
 * `journalctl -p warning` shows every warning and error; after the prefix the
 * line is the same JSON. CERT_AGENT_LOG_FORMAT=json or journal overrides the
 * detection.
 */
import { fstatSync } from 'node:fs';
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'journal';

/** pino level label to syslog priority: debug 7, info 6, warning 4, err 3, crit 2. */
export const JOURNAL_PRIORITY: Record<string, number> = { trace: 7, debug: 7, info: 6, warn: 4, error: 3, fatal: 2 };

/** Whether `fd` is the journal stream systemd connected this process to (JOURNAL_STREAM=dev:ino). */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const want = env.JOURNAL_STREAM;
  if (!want) return false;
  try {
    const st = fstatSync(fd);
    return want === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/** The format for `fd`: CERT_AGENT_LOG_FORMAT when set to json or journal, else journal on a journal stream. */
export function logFormatFor(fd: number, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const chosen = env.CERT_AGENT_LOG_FORMAT;
  if (chosen === 'json' || chosen === 'journal') return chosen;
  return isJournalStream(fd, env) ? 'journal' : 'json';
}

/** "<4>" in front of a warn line, "<3>" in front of an error; the rest of the line unchanged. */
export function journalLine(line: string): string {
  const label = /^\{"level":"(\w+)"/.exec(line)?.[1];
  return `<${JOURNAL_PRIORITY[label ?? ''] ?? 6}>${line}`;
}

/** The same synchronous destination (which retries EAGAIN on a non-blocking fd), each line prefixed. */
function journalDestination(fd: number): DestinationStream {
  const dest = pino.destination({ fd, sync: true });
  // pino hands over one complete line per call.
  return { write: (chunk: string) => dest.write(journalLine(chunk)) };
}

export function createLogger(opts: { fd?: number; level?: string; format?: LogFormat } = {}): Logger {
  const fd = opts.fd ?? 1;
  const format = opts.format ?? logFormatFor(fd);
  return pino(
    {
      base: { name: 'cert-agent' },
      level: opts.level ?? process.env.CERT_AGENT_LOG_LEVEL ?? 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }), log: redactSecrets },
    },
    format === 'journal' ? journalDestination(fd) : pino.destination({ fd, sync: true }),
  );
}

/** Fields whose values never reach a log line, at the top level or one object down. */
const SECRET_FIELDS = new Set(['keyPem', 'privateKey', 'keyAuthorization', 'accountKey']);
const CENSOR = '[redacted]';

/**
 * The logged object with every secret field's value replaced, copied where
 * it changes (the caller's objects are left alone). A plain function rather
 * than pino's `redact` option, which compiles code for its paths at every
 * start: ~15 ms of each command's start-up for the same four names.
 */
export function redactSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  let out = obj;
  for (const [key, value] of Object.entries(obj)) {
    let replaced: unknown = value;
    if (SECRET_FIELDS.has(key)) replaced = CENSOR;
    else if (value && typeof value === 'object' && !Array.isArray(value)) {
      const inner = value as Record<string, unknown>;
      const hits = Object.keys(inner).filter((k) => SECRET_FIELDS.has(k));
      if (hits.length) replaced = { ...inner, ...Object.fromEntries(hits.map((k) => [k, CENSOR])) };
    }
    if (replaced !== value) {
      if (out === obj) out = { ...obj };
      out[key] = replaced;
    }
  }
  return out;
}

/** A logger that drops everything, for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
