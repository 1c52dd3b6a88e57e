/** The command target: argv without a shell, a minimal environment, its defaults and what `doctor` can say of it. */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../agent/config/config.js';
import { commandTarget } from '../../../agent/reload/command.js';
import { childEnvironment, runArgv, tail } from '../../../agent/lib/run.js';
import { noneTarget } from '../../../agent/reload/none.js';

const config = (command?: string[]) =>
  validateConfig({
    ca: { url: 'https://127.0.0.1:9', fingerprint: 'a'.repeat(64) },
    certificate: { domains: ['app.internal'], dir: '/etc/cert-agent/tls' },
    reload: command ? { target: 'command', command } : { target: 'none' },
  });

describe('command target', () => {
  it('leaves the challenge to the agent (standalone) and verifies nothing by default', () => {
    expect(commandTarget.defaults).toEqual({ challengeMode: 'standalone' });
    expect(noneTarget.defaults).toEqual({ challengeMode: 'standalone' });
  });

  it('doctor: cannot tell which files the consumer reads, and says where they are', async () => {
    expect(await commandTarget.diagnose(config(['systemctl', 'reload', 'haproxy']))).toEqual([
      {
        status: 'skip',
        reason: 'proxy config',
        message:
          'reload.command ["systemctl","reload","haproxy"]: cannot tell which files the consumer reads; ' +
          'point it at /etc/cert-agent/tls/fullchain.pem and /etc/cert-agent/tls/key.pem',
      },
    ]);
    expect(await noneTarget.diagnose(config())).toEqual([
      { status: 'skip', reason: 'proxy config', message: 'reload.target is none' },
    ]);
  });

  it('passes an argument with spaces as one argument, without a shell', async () => {
    const r = await runArgv(['/bin/echo', 'a b', '$HOME'], 5);
    expect(r).toMatchObject({ code: 0, output: 'a b $HOME', timedOut: false });
  });

  it('a child inherits PATH, the locale and the time zone only', () => {
    const env = childEnvironment({ EXTRA: '1' }, { PATH: '/bin', LANG: 'C', LC_ALL: 'C', TOKEN: 'secret', TZ: 'UTC' });
    expect(env).toEqual({ PATH: '/bin', LANG: 'C', LC_ALL: 'C', TZ: 'UTC', EXTRA: '1' });
  });

  it('keeps the tail of long output on one line', () => {
    expect(tail('a\n  b\n')).toBe('a | b');
    expect(tail('x'.repeat(1000))).toMatch(/^\.\.\.x{400}$/);
  });
});
