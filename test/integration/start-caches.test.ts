/**
 * The start-up cache of the bundle (V8's code cache), through the bundle as
 * a container runs it: used only in a private directory, never through a
 * symlink, a damaged cache costs only time, never a wrong answer, and the
 * parsed configs earlier versions kept there are removed.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  lstatSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modeOf, runAgent, tempDir } from '../helpers/agent.js';

let work: string;
let config: string;
beforeAll(async () => {
  work = tempDir('cert-agent-caches-');
  chmodSync(work, 0o700);
  config = join(work, 'config.yaml');
  // No certificate yet: status is CRITICAL, the same with or without the cache.
  const certDir = join(work, 'tls');
  writeFileSync(
    config,
    `ca: {url: "https://ca.internal:9000", fingerprint: "${'a'.repeat(64)}"}\ncertificate: {domains: [app.internal], dir: ${certDir}}\nstateDir: ${join(work, 'state')}\n`,
    { mode: 0o600 },
  );
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const status = (cacheDir: string) =>
  runAgent(['status', '--json', '--config', config], { env: { CERT_AGENT_CACHE_DIR: cacheDir } });
const plain = (r: { stdout: string }) => JSON.stringify({ ...JSON.parse(r.stdout), checkedAt: undefined });

describe('the start-up code cache', () => {
  it('is kept 0600 in a 0700 directory and gives the same answer as no cache', async () => {
    const dir = join(work, 'c1');
    const none = await status('relative/dir/is/never/used');
    // What an earlier version kept here: a parsed config, removed when the code cache is written.
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'config-0123456789abcdef.json'), '{}', { mode: 0o600 });
    const first = await status(dir);
    const second = await status(dir);
    expect(modeOf(dir)).toBe(0o700);
    const files = readdirSync(dir).sort();
    expect(files).toEqual([expect.stringMatching(/^v8-[0-9a-f]{16}-v\d+\.\d+\.\d+-\w+-status\.bin$/)]);
    for (const f of files) expect(modeOf(join(dir, f))).toBe(0o600);
    expect(first.code).toBe(none.code);
    expect(plain(first)).toBe(plain(none));
    expect(plain(second)).toBe(plain(none));
    expect(existsSync(join(process.cwd(), 'relative'))).toBe(false);
  });

  it('is not used in a directory others can write to or that belongs to someone else', async () => {
    const open = join(work, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    const r = await status(join(open, 'cache'));
    expect(r.stdout).toContain('"status"');
    expect(existsSync(join(open, 'cache'))).toBe(false);
    const foreign = join(work, 'foreign');
    mkdirSync(foreign, { mode: 0o700 });
    const { chownSync } = await import('node:fs');
    chownSync(foreign, 65534, 65534);
    await status(foreign);
    expect(readdirSync(foreign)).toEqual([]);
  });

  it('never follows a symlink, and a damaged cache only costs time', async () => {
    const dir = join(work, 'c5');
    await status(dir);
    const v8 = readdirSync(dir).find((f) => f.startsWith('v8-'))!;
    const victim = join(work, 'victim');
    writeFileSync(victim, 'unchanged', { mode: 0o600 });
    rmSync(join(dir, v8));
    symlinkSync(victim, join(dir, v8));
    const r = await status(dir);
    expect(plain(r)).toBe(plain(await status('none')));
    expect(readFileSync(victim, 'utf8')).toBe('unchanged');
    // Replaced by a file of its own (rename does not follow the link); the target is untouched.
    expect(lstatSync(join(dir, v8)).isFile()).toBe(true);
    expect(modeOf(join(dir, v8))).toBe(0o600);
    rmSync(join(dir, v8));
    writeFileSync(join(dir, v8), Buffer.alloc(4096, 7), { mode: 0o600 });
    const again = await status(dir);
    expect(plain(again)).toBe(plain(await status('none')));
    expect(readFileSync(join(dir, v8)).equals(Buffer.alloc(4096, 7))).toBe(false);
  });
});
