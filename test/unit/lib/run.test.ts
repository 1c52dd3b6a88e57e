import { describe, expect, it } from 'vitest';
import { childEnvironment, runArgv, tail } from '../../../agent/lib/run.js';

describe('runArgv', () => {
  it('a child gets PATH, the locale and the time zone, nothing else', () => {
    const env = childEnvironment(
      { EXTRA: '1' },
      { PATH: '/bin', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'UTC', TOKEN: 's3cret' },
    );
    expect(env).toEqual({ PATH: '/bin', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'UTC', EXTRA: '1' });
    expect(childEnvironment({}, {}).PATH).toMatch(/\/usr\/bin/);
  });

  it('the tail of the output is one line, at most 400 characters', () => {
    expect(tail('a\n  b \n')).toBe('a | b');
    expect(tail('x'.repeat(500))).toBe(`...${'x'.repeat(400)}`);
  });

  it('runs an argv list and reports its exit code and output', async () => {
    const r = await runArgv(['/bin/sh', '-c', 'echo out; echo err >&2; exit 3'], 10, {}, { stdoutLimit: 100 });
    expect(r).toMatchObject({ code: 3, signal: null, timedOut: false, stdout: 'out\n' });
    expect(r.output).toMatch(/out/);
    expect(r.output).toMatch(/err/);
  });

  it('a program that cannot start has no exit code and says why', async () => {
    const r = await runArgv(['/nonexistent/program'], 10);
    expect([r.code, r.output]).toEqual([null, expect.stringMatching(/ENOENT/)]);
  });

  it('a timeout ends the program and what it started', async () => {
    const started = Date.now();
    const r = await runArgv(['/bin/sh', '-c', 'sleep 30 & sleep 30'], 0.2);
    expect(r.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
