/**
 * trust.installSystem: one .crt per trusted root in the system store's
 * directory, the agent's own files that are no longer trusted removed, and
 * the updater run only when something changed; a failing updater is a
 * warning, never a failed pass. The directory and the updater are injected.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../agent/config/config.js';
import { createLogger } from '../../../agent/lib/log.js';
import type { TrustBundle } from '../../../agent/trust/file.js';
import { installSystemTrust } from '../../../agent/trust/system-store.js';
import { modeOf, tempDir } from '../../helpers/agent.js';
import { makeCa, type TestCa } from '../../helpers/certs.js';

let dir: string;
let a: TestCa;
let b: TestCa;
const lines: string[] = [];
const log = createLogger({ sink: (line) => lines.push(line), level: 'debug', format: 'json' });
const config = (installSystem: boolean) =>
  validateConfig({
    ca: { url: 'https://ca.internal:9000', fingerprint: 'ab'.repeat(32) },
    certificate: { domains: ['app.internal'] },
    trust: { installSystem },
  });
const bundle = (...cas: TestCa[]): TrustBundle => ({
  pins: [],
  roots: cas.map((c) => ({ fingerprint: c.fingerprint, pem: c.root.pem })),
  bootstrappedAt: '2026-01-01T00:00:00Z',
});
const events = () => lines.map((l) => (JSON.parse(l) as { event?: string }).event);

beforeAll(async () => {
  [a, b] = await Promise.all([makeCa('A'), makeCa('B')]);
  dir = tempDir('cert-agent-systrust-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('installSystemTrust', () => {
  it('does nothing unless trust.installSystem is set', async () => {
    const store = join(dir, 'off');
    expect(await installSystemTrust(config(false), bundle(a), log, store, ['false'])).toBe(false);
    expect(() => readdirSync(store)).toThrow();
  });

  it('writes one 0644 .crt per root, runs the updater once, and not again while nothing changes', async () => {
    const store = join(dir, 'store');
    mkdirSync(store);
    writeFileSync(join(store, 'someone-else.crt'), 'not ours\n');
    const marker = join(dir, 'updated');
    const updater = ['/bin/sh', '-c', `echo run >> '${marker}'`];
    expect(await installSystemTrust(config(true), bundle(a, b), log, store, updater)).toBe(true);
    const name = (c: TestCa) => `cert-agent-${c.fingerprint.slice(0, 16)}.crt`;
    expect(readdirSync(store).sort()).toEqual([name(a), name(b), 'someone-else.crt'].sort());
    expect(readFileSync(join(store, name(a)), 'utf8')).toBe(a.root.pem);
    expect(modeOf(join(store, name(b)))).toBe(0o644);
    expect(await installSystemTrust(config(true), bundle(a, b), log, store, updater)).toBe(false);
    expect(readFileSync(marker, 'utf8')).toBe('run\n');
    // A root no longer trusted: its file goes, the operator's stays, the updater runs again.
    expect(await installSystemTrust(config(true), bundle(b), log, store, updater)).toBe(true);
    expect(readdirSync(store).sort()).toEqual([name(b), 'someone-else.crt'].sort());
    expect(readFileSync(marker, 'utf8')).toBe('run\nrun\n');
  });

  it('a failing updater is logged as a warning and reported as no change', async () => {
    lines.length = 0;
    const store = join(dir, 'failing');
    mkdirSync(store);
    expect(await installSystemTrust(config(true), bundle(a), log, store, ['/bin/false'])).toBe(false);
    expect(events()).toEqual(['system_trust_failed']);
  });
});
