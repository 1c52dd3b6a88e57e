/**
 * trust.installSystem: the pinned roots go into a system store through the
 * real update-ca-certificates (pointed at a scratch store, so the test machine's
 * own trust is untouched).
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../agent/config/config.js';
import { silentLogger } from '../../agent/lib/log.js';
import { installSystemTrust } from '../../agent/trust/system-store.js';
import type { StepCa } from '../harness/stepca.js';
import { useStepCaSuite } from '../helpers/suite.js';

let ca: StepCa;
let dir: string;
useStepCaSuite((c, d) => {
  ca = c;
  dir = d;
});

describe('installSystem', () => {
  it('installs the pinned root with update-ca-certificates, once, and withdraws roots no longer trusted', async () => {
    const local = join(dir, 'local');
    const etc = join(dir, 'etc');
    mkdirSync(local);
    mkdirSync(etc);
    mkdirSync(join(dir, 'hooks'));
    mkdirSync(join(dir, 'share'));
    writeFileSync(join(dir, 'ca-certificates.conf'), '');
    const updater = [
      'update-ca-certificates',
      '--certsconf',
      join(dir, 'ca-certificates.conf'),
      '--certsdir',
      join(dir, 'share'),
      '--localcertsdir',
      local,
      '--etccertsdir',
      etc,
      '--hooksdir',
      join(dir, 'hooks'),
    ];
    const config = validateConfig({
      ca: { url: ca.url, fingerprint: ca.rootFingerprint },
      certificate: { domains: ['localhost'] },
      trust: { installSystem: true },
    });
    const bundle = {
      pins: [ca.rootFingerprint],
      roots: [{ fingerprint: ca.rootFingerprint, pem: ca.rootPem }],
      bootstrappedAt: new Date().toISOString(),
    };

    expect(await installSystemTrust(config, bundle, silentLogger(), local, updater)).toBe(true);
    expect(readdirSync(local)).toEqual([`cert-agent-${ca.rootFingerprint.slice(0, 16)}.crt`]);
    const store = readFileSync(join(etc, 'ca-certificates.crt'), 'utf8');
    expect(store).toContain(ca.rootPem.trim().split('\n')[1]);
    expect(await installSystemTrust(config, bundle, silentLogger(), local, updater)).toBe(false);

    await ca.recreate();
    const next = {
      ...bundle,
      pins: [ca.rootFingerprint],
      roots: [{ fingerprint: ca.rootFingerprint, pem: ca.rootPem }],
    };
    expect(await installSystemTrust(config, next, silentLogger(), local, updater)).toBe(true);
    expect(readdirSync(local)).toEqual([`cert-agent-${ca.rootFingerprint.slice(0, 16)}.crt`]);
    expect(readFileSync(join(etc, 'ca-certificates.crt'), 'utf8')).toContain(ca.rootPem.trim().split('\n')[1]);

    const off = validateConfig({
      ca: { url: ca.url, fingerprint: ca.rootFingerprint },
      certificate: { domains: ['localhost'] },
    });
    expect(await installSystemTrust(off, next, silentLogger(), local, updater)).toBe(false);
  });
});
