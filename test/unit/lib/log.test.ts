/**
 * Log levels reach journald as priorities: on the journal stream (the fd
 * that JOURNAL_STREAM names) each JSON line starts with "<N>", which
 * journald strips and takes as the priority; elsewhere the lines are plain
 * JSON. Checked on the logger and on the bundle as systemd would run it.
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, journalLine, logFormatFor } from '../../../agent/lib/log.js';
import { agentBundle, runAgent, tempDir } from '../../helpers/agent.js';

const streamOf = (fd: number) => {
  const st = fstatSync(fd);
  return `${st.dev}:${st.ino}`;
};
const PRIORITY: Record<string, string> = { debug: '7', info: '6', warn: '4', error: '3', fatal: '2' };

/** Each line: "<N>" matching its JSON level, then the JSON. */
function checkPrefixed(text: string): { level: string; event?: string }[] {
  const lines = text.trimEnd().split('\n');
  return lines.map((line) => {
    const m = /^<(\d)>(\{.*\})$/.exec(line);
    expect(m, line).not.toBeNull();
    const doc = JSON.parse(m![2]!);
    expect(m![1]).toBe(PRIORITY[doc.level]);
    return doc;
  });
}

describe('journalLine', () => {
  it.each(Object.entries(PRIORITY))('%s gets <%s>', (level, priority) => {
    const line = `{"level":"${level}","time":"2026-01-01T00:00:00.000Z","msg":"x"}\n`;
    expect(journalLine(line)).toBe(`<${priority}>${line}`);
  });
});

describe('createLogger', () => {
  it('journal format: every level as its syslog priority, the JSON unchanged after it', () => {
    const file = join(tempDir(), 'log');
    const fd = openSync(file, 'w');
    const log = createLogger({ fd, level: 'debug', format: 'journal' });
    log.debug({ event: 'd' }, 'debug');
    log.info({ event: 'i' }, 'info');
    log.warn({ event: 'w' }, 'warn');
    log.error({ event: 'e' }, 'error');
    log.fatal({ event: 'f' }, 'fatal');
    closeSync(fd);
    const docs = checkPrefixed(readFileSync(file, 'utf8'));
    expect(docs.map((d) => d.event)).toEqual(['d', 'i', 'w', 'e', 'f']);
  });

  it('json format: plain JSON lines', () => {
    const file = join(tempDir(), 'log');
    const fd = openSync(file, 'w');
    createLogger({ fd, format: 'json' }).warn({ event: 'w' }, 'warn');
    closeSync(fd);
    expect(readFileSync(file, 'utf8')).toMatch(/^\{"level":"warn",.*"event":"w".*\}\n$/);
  });

  it("never writes a secret field, at the top level or one object down, and leaves the caller's object alone", () => {
    const file = join(tempDir(), 'log');
    const fd = openSync(file, 'w');
    const fields = {
      event: 'e',
      keyPem: '-----BEGIN PRIVATE KEY-----A',
      set: { keyPem: 'B', privateKey: 'C', serial: '01' },
      challenge: { keyAuthorization: 'D', token: 't' },
      accountKey: 'E',
      list: [{ keyPem: 'F' }],
    };
    const before = JSON.stringify(fields);
    createLogger({ fd, format: 'json' }).warn(fields, 'warn');
    closeSync(fd);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc).toMatchObject({
      event: 'e',
      keyPem: '[redacted]',
      set: { keyPem: '[redacted]', privateKey: '[redacted]', serial: '01' },
      challenge: { keyAuthorization: '[redacted]', token: 't' },
      accountKey: '[redacted]',
    });
    expect(readFileSync(file, 'utf8')).not.toMatch(/BEGIN|"[BCDE]"/);
    expect(JSON.stringify(fields)).toBe(before);
  });

  it('refuses a level it does not know, naming the ones it does (exit 64)', () => {
    expect(() => createLogger({ level: 'verbose', sink: () => undefined })).toThrow(
      expect.objectContaining({
        exitCode: 64,
        message:
          'log level "verbose" (CERT_AGENT_LOG_LEVEL) is not one of trace, debug, info, warn, error, fatal, silent',
      }),
    );
  });

  it('a bad CERT_AGENT_LOG_LEVEL stops renew and check before they read or write anything', async () => {
    const dir = tempDir();
    for (const command of ['renew', 'check']) {
      const r = await runAgent([command, '--config', join(dir, 'config.yaml')], {
        env: { CERT_AGENT_LOG_LEVEL: 'verbose' },
      });
      expect(r.code, r.stderr).toBe(64);
      expect(r.stderr).toMatch(/^cert-agent: log level "verbose" \(CERT_AGENT_LOG_LEVEL\) is not one of [a-z, ]+\n$/);
      expect(r.stdout).toBe('');
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('detects the journal stream by device and inode; CERT_AGENT_LOG_FORMAT overrides', () => {
    const fd = openSync(join(tempDir(), 'log'), 'w');
    const other = openSync(join(tempDir(), 'other'), 'w');
    try {
      expect(logFormatFor(fd, { JOURNAL_STREAM: streamOf(fd) })).toBe('journal');
      expect(logFormatFor(fd, { JOURNAL_STREAM: streamOf(other) })).toBe('json');
      expect(logFormatFor(fd, {})).toBe('json');
      expect(logFormatFor(fd, { JOURNAL_STREAM: streamOf(fd), CERT_AGENT_LOG_FORMAT: 'json' })).toBe('json');
      expect(logFormatFor(fd, { CERT_AGENT_LOG_FORMAT: 'journal' })).toBe('journal');
    } finally {
      closeSync(fd);
      closeSync(other);
    }
  });
});

/** Runs the bundle with stdout and stderr going to files, as systemd connects them to the journal. */
async function runToFiles(args: string[], env: (out: string, err: string) => Record<string, string>, stopOn?: RegExp) {
  const dir = tempDir();
  const outFd = openSync(join(dir, 'stdout'), 'w');
  const errFd = openSync(join(dir, 'stderr'), 'w');
  const proc = spawn(process.execPath, [agentBundle(), ...args], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env(streamOf(outFd), streamOf(errFd)) },
    stdio: ['ignore', outFd, errFd],
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  if (stopOn) {
    const deadline = Date.now() + 30_000;
    while (!stopOn.test(readFileSync(join(dir, 'stdout'), 'utf8')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    proc.kill('SIGTERM');
  }
  const code = await exited;
  closeSync(outFd);
  closeSync(errFd);
  return { code, stdout: readFileSync(join(dir, 'stdout'), 'utf8'), stderr: readFileSync(join(dir, 'stderr'), 'utf8') };
}

describe('the bundle under a journal stream', () => {
  const configFor = (dir: string) => {
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        'ca: { url: "https://127.0.0.1:1", fingerprint: "' + 'ab'.repeat(32) + '" }',
        'certificate: { domains: [app.internal], dir: "' + join(dir, 'tls') + '" }',
        'stateDir: "' + join(dir, 'state') + '"',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return config;
  };

  it('run: JOURNAL_STREAM = stdout: every line prefixed with its priority, failures as warning or worse', async () => {
    const config = configFor(tempDir());
    const r = await runToFiles(['run', '--config', config], (out) => ({ JOURNAL_STREAM: out }), /renewal_failed/);
    expect(r.code).toBe(0);
    const docs = checkPrefixed(r.stdout);
    expect(docs.find((d) => d.event === 'daemon_started')?.level).toBe('info');
    const failed = docs.find((d) => d.event === 'renewal_failed');
    expect(['warn', 'error']).toContain(failed?.level);
    expect(r.stdout).toMatch(/^<[43]>\{"level":"(warn|error)".*"event":"renewal_failed"/m);
  }, 60_000);

  it('run: without JOURNAL_STREAM, or another stream, plain JSON', async () => {
    const config = configFor(tempDir());
    const plain = await runToFiles(
      ['run', '--config', config],
      (_out, err) => ({ JOURNAL_STREAM: err }),
      /renewal_failed/,
    );
    for (const line of plain.stdout.trimEnd().split('\n')) expect(line).toMatch(/^\{"level":/);
  }, 60_000);

  it('a one-shot command: its log lines and its one-line error on the stderr journal stream are prefixed', async () => {
    const config = configFor(tempDir());
    const r = await runToFiles(['renew', '--config', config], (_out, err) => ({ JOURNAL_STREAM: err }));
    expect(r.code).toBe(69);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^<3>cert-agent: /);
    checkPrefixed(lines.slice(0, -1).join('\n'));
    expect(r.stderr).toMatch(/"event":"renewal_failed"/);
  }, 60_000);
});

describe('docs/logs.md', () => {
  it('lists every event the agent logs, and none it does not', () => {
    const root = join(import.meta.dirname, '../../..');
    const sources = readdirSync(join(root, 'agent'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(join(root, 'agent', f), 'utf8'))
      .join('\n');
    const logged = new Set([
      ...[...sources.matchAll(/event: '([a-z_]+)'/g)].map((m) => m[1]!),
      ...[...sources.matchAll(/emit\('([a-z_]+)'/g)].map((m) => m[1]!),
    ]);
    const documented = new Set(
      [...readFileSync(join(root, 'docs/logs.md'), 'utf8').matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!),
    );
    expect([...logged].filter((e) => !documented.has(e))).toEqual([]);
    expect([...documented].filter((e) => !logged.has(e))).toEqual([]);
  });
});
