/**
 * The start-up caches of the bundle (V8 code cache, parsed config), through
 * the bundle as a container runs it: used only in a private directory, never
 * through a symlink, never for a config that changed (even with the same
 * size and mtime) or by another build of the same version, and a damaged
 * cache costs only time, never a wrong answer.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  lstatSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBundle, modeOf, runAgent, tempDir } from '../helpers/agent.js';

let work: string;
let config: string;
beforeAll(async () => {
  work = tempDir('cert-agent-caches-');
  chmodSync(work, 0o700);
  config = join(work, 'config.yaml');
  // No certificate yet: status is CRITICAL, the same with or without the caches.
  const certDir = join(work, 'tls');
  writeFileSync(
    config,
    `ca: {url: "https://ca.internal:9000", fingerprint: "${'a'.repeat(64)}"}\ncertificate: {domains: [app.internal], dir: ${certDir}}\nstateDir: ${join(work, 'state')}\n`,
    { mode: 0o600 },
  );
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const status = (cacheDir: string, program?: string) =>
  runAgent(['status', '--json', '--config', config], {
    env: { CERT_AGENT_CACHE_DIR: cacheDir },
    ...(program ? { program } : {}),
  });
const plain = (r: { stdout: string }) => JSON.stringify({ ...JSON.parse(r.stdout), checkedAt: undefined });

describe('start-up caches', () => {
  it('are kept 0600 in a 0700 directory and give the same answer as no cache', async () => {
    const dir = join(work, 'c1');
    const none = await status('relative/dir/is/never/used');
    const first = await status(dir);
    const second = await status(dir);
    expect(modeOf(dir)).toBe(0o700);
    const files = readdirSync(dir).sort();
    expect(files).toEqual([
      expect.stringMatching(/^config-[0-9a-f]{16}\.json$/),
      expect.stringMatching(/^v8-[0-9a-f]{16}-v\d+\.\d+\.\d+-\w+-status\.bin$/),
    ]);
    for (const f of files) expect(modeOf(join(dir, f))).toBe(0o600);
    expect(first.code).toBe(none.code);
    expect(plain(first)).toBe(plain(none));
    expect(plain(second)).toBe(plain(none));
    expect(existsSync(join(process.cwd(), 'relative'))).toBe(false);
  });

  it('never answers from the cache for a config that changed, even with the same size, inode and mtime', async () => {
    const dir = join(work, 'c2');
    // A whole second, so that the mtime can be put back exactly.
    utimesSync(config, 1_800_000_000, 1_800_000_000);
    const before = await status(dir);
    expect(JSON.parse(before.stdout).ca.url).toBe('https://ca.internal:9000');
    const { mtimeMs, ino, size } = statSync(config);
    writeFileSync(config, readFileSync(config, 'utf8').replace('ca.internal:9000', 'cb.internal:9000'));
    utimesSync(config, 1_800_000_000, 1_800_000_000);
    expect(statSync(config)).toMatchObject({ mtimeMs, ino, size });
    const after = await status(dir);
    expect(JSON.parse(after.stdout).ca.url).toBe('https://cb.internal:9000');
    writeFileSync(config, readFileSync(config, 'utf8').replace('cb.internal:9000', 'ca.internal:9000'));
  });

  it('an invalid config is refused as without the cache, and not cached', async () => {
    const dir = join(work, 'c3');
    await status(dir);
    const good = readFileSync(config, 'utf8');
    writeFileSync(config, good + 'bogus: 1\n');
    const r = await status(dir);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).problems.join(' ')).toContain('bogus');
    writeFileSync(config, good);
    expect(plain(await status(dir))).toBe(plain(await status('none')));
  });

  it('are not used in a directory others can write to or that belongs to someone else', async () => {
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

  it('never follow a symlink, and a damaged cache only costs time', async () => {
    const dir = join(work, 'c5');
    await status(dir);
    const v8 = readdirSync(dir).find((f) => f.startsWith('v8-'))!;
    const cfg = readdirSync(dir).find((f) => f.startsWith('config-'))!;
    const victim = join(work, 'victim');
    writeFileSync(victim, 'unchanged', { mode: 0o600 });
    rmSync(join(dir, v8));
    symlinkSync(victim, join(dir, v8));
    writeFileSync(join(dir, cfg), '{"version": "damaged"');
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

  it('never answers from the parsed config another build of the same version cached', async () => {
    const dir = join(work, 'c6');
    await status(dir);
    const name = readdirSync(dir).find((f) => f.startsWith('config-'))!;
    const entry = join(dir, name);
    // A cached answer that parsing the file would never give, to tell where an answer came from.
    const cached = JSON.parse(readFileSync(entry, 'utf8'));
    cached.config.ca.url = 'https://cached.internal:9000';
    writeFileSync(entry, JSON.stringify(cached));
    expect(JSON.parse((await status(dir)).stdout).ca.url).toBe('https://cached.internal:9000');
    // The same program rebuilt (here: one more line), same version: it parses the file itself.
    const rebuilt = join(work, 'rebuilt.cjs');
    writeFileSync(rebuilt, `${readFileSync(agentBundle(), 'utf8')}\n// rebuilt\n`, { mode: 0o755 });
    const version = (p?: string) => runAgent(['--version'], p ? { program: p } : {});
    expect((await version(rebuilt)).stdout).toBe((await version()).stdout);
    expect(JSON.parse((await status(dir, rebuilt)).stdout).ca.url).toBe('https://ca.internal:9000');
  });
});
