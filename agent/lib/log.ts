/**
 * Structured logging: JSON lines, one event per step, with the same field
 * names throughout (domains, serial, notAfter, attempt, nextRenewal, error),
 * in the shape pino writes them ({"level":"info","time":…,"name":"cert-agent",
 * …fields,"msg":…}). Written synchronously: a daemon killed mid-pass must not
 * lose the line that says why. Key material is never passed to the logger;
 * the redaction list is a second line of defence.
 *
 * Our own rather than pino: the agent logs a few dozen events with a fixed
 * shape, and pino with what it requires (worker_threads, assert, os, its
 * stream and serializer packages) cost every command's start-up and ~2.8 MiB
 * of the resident daemon (BENCHMARKS.md).
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
import { fstatSync, writeSync } from 'node:fs';
import { UsageError } from './errors.js';

type LogFn = (fields: object, msg?: string) => void;

/** What the agent logs through: an event's fields, then a sentence for the operator. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
}

/** Severity order of the level names (pino's numbers). */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
type LevelName = keyof typeof LEVELS;

export type LogFormat = 'json' | 'journal';

/** Level name to syslog priority: debug 7, info 6, warning 4, err 3, crit 2. */
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

/**
 * Writes the whole line to `fd` now. A non-blocking descriptor that is full
 * (EAGAIN) is waited for, briefly and a bounded number of times; any other
 * failure (a closed journal stream) drops the line: logging never stops the
 * agent.
 */
function writeLine(fd: number, line: string): void {
  const buf = Buffer.from(line);
  let off = 0;
  for (let waits = 0; off < buf.length;) {
    try {
      off += writeSync(fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || waits++ >= 1000) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

export interface LoggerOptions {
  /** Where the lines go: this file descriptor (default 1), or `sink` when given. */
  fd?: number;
  /** Takes each complete line instead of `fd` (tests, the benchmark's fleet). */
  sink?: (line: string) => void;
  /** debug, info, warn, error, fatal or silent; default CERT_AGENT_LOG_LEVEL, then info. */
  level?: string;
  format?: LogFormat;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const fd = opts.fd ?? 1;
  const format = opts.sink ? 'json' : (opts.format ?? logFormatFor(fd));
  const levelName = opts.level ?? process.env.CERT_AGENT_LOG_LEVEL ?? 'info';
  if (!Object.hasOwn(LEVELS, levelName))
    throw new UsageError(
      `log level ${JSON.stringify(levelName)} (CERT_AGENT_LOG_LEVEL) is not one of ${Object.keys(LEVELS).join(', ')}`,
    );
  const threshold = LEVELS[levelName as LevelName];
  const write = opts.sink ?? ((line: string) => writeLine(fd, format === 'journal' ? journalLine(line) : line));
  const at =
    (level: Exclude<LevelName, 'silent'>): LogFn =>
    (fields, msg) => {
      if (LEVELS[level] < threshold) return;
      write(`${formatLine(level, fields, msg)}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal') };
}

/** One JSON line: level, time, name, the event's fields (secrets redacted), msg. */
function formatLine(level: string, fields: object, msg: string | undefined): string {
  const head = { level, time: new Date().toISOString(), name: 'cert-agent' };
  const body = redactSecrets(fields as Record<string, unknown>);
  try {
    return JSON.stringify({ ...head, ...body, ...(msg !== undefined ? { msg } : {}) });
  } catch (err) {
    // A field JSON cannot hold (a cycle, a BigInt): the line still says what happened.
    const why = err instanceof Error ? err.message : String(err);
    return JSON.stringify({ ...head, event: body.event, msg, logError: `fields not logged: ${why}` });
  }
}

/** Fields whose values never reach a log line, at the top level or one object down. */
const SECRET_FIELDS = new Set(['keyPem', 'privateKey', 'keyAuthorization', 'accountKey']);
const CENSOR = '[redacted]';

/**
 * The logged object with every secret field's value replaced, copied where
 * it changes (the caller's objects are left alone).
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
  return createLogger({ level: 'silent', sink: () => undefined });
}
