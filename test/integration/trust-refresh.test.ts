/**
 * Trust refresh against a real step-ca whose /roots serves more than the
 * pinned root (ca.json `root` as a list): an unrelated root and a leaf are
 * reported and never trusted, a new root cross-signed by the pinned one (a
 * root rotation) is trusted, trust.installSystem installs only trusted roots,
 * and a trust.json widened before is cleaned when it is loaded; a root whose
 * cross-certificate limits what the root itself does not (pathLen, extended
 * key usage, name constraints) is refused, and dropped from trust.json.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { createLogger } from '../../agent/lib/log.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../agent/config/config.js';
import { ensureTrust } from '../../agent/renewal/trust-upkeep.js';
import { installSystemTrust } from '../../agent/trust/system-store.js';
import { bootstrapTrust } from '../../agent/trust/pin.js';
import { loadTrust, saveTrust } from '../../agent/trust/file.js';
import { refreshTrust } from '../../agent/trust/refresh.js';
import { fingerprintOf, issueLeafUnder, makeRotatedRoot } from '../harness/pki.js';
import { makeOtherCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { useStepCaSuite } from '../helpers/suite.js';
import schema from '../../docs/status.schema.json' with { type: 'json' };

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
addFormats(ajv);
const validate = ajv.compile(schema);

let ca: StepCa;
let dir: string;
useStepCaSuite((c, d) => {
  ca = c;
  dir = d;
});

let unrelated: { rootPem: string; rootFingerprint: string };
let rotated: { rootPem: string; crossPem: string };
beforeAll(async () => {
  unrelated = await makeOtherCa();
  rotated = await makeRotatedRoot(ca.pki);
});

let n = 0;
/** A state directory bootstrapped from the pinned root, and its config (also written as a file for the CLI). */
async function installation(extra: Record<string, unknown> = {}, pins = [ca.rootFingerprint]) {
  const base = join(dir, `case-${++n}`);
  const stateDir = join(base, 'state');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const raw = {
    ca: { url: ca.url, fingerprint: pins },
    certificate: { domains: ['localhost'], dir: join(base, 'tls') },
    stateDir,
    ...extra,
  };
  const configPath = join(base, 'config.yaml');
  writeFileSync(configPath, JSON.stringify(raw));
  saveTrust(stateDir, await bootstrapTrust(ca.url, pins, new Date()));
  return { config: validateConfig(raw), configPath, stateDir };
}

function capture() {
  const events: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'info', sink: (line: string) => void events.push(JSON.parse(line)) });
  return { log, events };
}

async function status(configPath: string) {
  const text = await runAgent(['status', '--config', configPath]);
  const json = await runAgent(['status', '--json', '--config', configPath]);
  const doc = JSON.parse(json.stdout);
  validate(doc);
  expect(validate.errors ?? []).toEqual([]);
  return { text: text.stdout, doc };
}

const trustedFps = (stateDir: string) => (loadTrust(stateDir)?.roots ?? []).map((r) => r.fingerprint).sort();
const onDisk = (stateDir: string) => readFileSync(join(stateDir, 'trust.json'), 'utf8');

describe('trust refresh trusts only what a pin or a trusted root vouches for', () => {
  it('does not trust an unrelated root /roots serves; logs it and status warns with how to pin it', async () => {
    await ca.serveExtraRoots([unrelated.rootPem]);
    const { config, configPath, stateDir } = await installation();
    const { log, events } = capture();
    expect(await refreshTrust(config, new Date(), log, true)).toEqual([]);
    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint]);
    expect(onDisk(stateDir)).not.toContain(unrelated.rootPem.split('\n')[1]);
    const warning = { level: 'warn', event: 'trust_root_refused', fingerprint: unrelated.rootFingerprint };
    expect(events).toContainEqual(expect.objectContaining(warning));

    const { text, doc } = await status(configPath);
    expect(doc.ca.trustedFingerprints).toEqual([ca.rootFingerprint]);
    expect(doc.ca.untrustedRoots).toEqual([expect.objectContaining({ fingerprint: unrelated.rootFingerprint })]);
    const hint = `cert-agent enroll --fingerprint ${ca.rootFingerprint},${unrelated.rootFingerprint}`;
    expect(doc.problems).toContainEqual(expect.stringContaining(hint));
    expect(text).toContain(hint);
    expect(text).toContain(`ca.fingerprint: [${ca.rootFingerprint}, ${unrelated.rootFingerprint}]`);
  });

  it('does not trust a leaf (not a CA) that /roots serves, even one issued under the pinned root', async () => {
    const leafPem = await issueLeafUnder(ca.pki.intCrt, ca.pki.intKey, ['ca.example.test']);
    await ca.serveExtraRoots([leafPem]);
    const { config, configPath, stateDir } = await installation();
    const { log, events } = capture();
    await refreshTrust(config, new Date(), log, true);
    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint]);
    const leafFp = fingerprintOf(leafPem);
    expect(events).toContainEqual(expect.objectContaining({ event: 'trust_root_refused', fingerprint: leafFp }));
    const { doc } = await status(configPath);
    expect(doc.problems).toContainEqual(expect.stringMatching(new RegExp(`lists ${leafFp} .*not a self-signed CA`)));
  });

  it('trusts a new root cross-signed by the pinned root (a rotation), also when trust.json is read again', async () => {
    await ca.serveExtraRoots([rotated.rootPem, rotated.crossPem]);
    const { config, configPath, stateDir } = await installation();
    const { log, events } = capture();
    expect(await refreshTrust(config, new Date(), log, true)).toEqual([fingerprintOf(rotated.rootPem)]);
    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint, fingerprintOf(rotated.rootPem)].sort());
    // The cross-certificate is the evidence, not a root and not a refusal.
    expect(events.filter((e) => e.event === 'trust_root_refused')).toEqual([]);
    const { doc } = await status(configPath);
    expect(doc.ca.untrustedRoots).toEqual([]);
    expect(doc.problems.join('\n')).not.toMatch(/not trusted/);
  });

  it('does not trust a new root whose "cross-certificate" another CA signed, or that has none', async () => {
    const fake = await makeRotatedRoot({ ...ca.pki, rootCrt: ca.pki.intCrt, rootKey: ca.pki.intKey }, 'forged');
    const bare = await makeRotatedRoot(ca.pki, 'bare');
    await ca.serveExtraRoots([fake.rootPem, fake.crossPem, bare.rootPem]);
    const { config, stateDir } = await installation();
    const { log, events } = capture();
    await refreshTrust(config, new Date(), log, true);
    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint]);
    const refused = events.filter((e) => e.event === 'trust_root_refused').map((e) => e.fingerprint);
    expect(refused.sort()).toEqual([fake.rootPem, fake.crossPem, bare.rootPem].map(fingerprintOf).sort());
  });

  it('still trusts a served root that the operator pinned ahead of a planned rotation (several pins)', async () => {
    const planned = await makeRotatedRoot(ca.pki, 'planned');
    await ca.serveExtraRoots([]);
    const pins = [ca.rootFingerprint, fingerprintOf(planned.rootPem)];
    const { config, configPath, stateDir } = await installation({}, pins);
    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint]);
    await ca.serveExtraRoots([planned.rootPem]);
    await refreshTrust(config, new Date(), capture().log, true);
    expect(trustedFps(stateDir)).toEqual([...pins].sort());
    expect((await status(configPath)).doc.ca.untrustedRoots).toEqual([]);
  });

  it('trust.installSystem installs the pinned and the cross-signed root, never the unrelated one', async () => {
    await ca.serveExtraRoots([unrelated.rootPem, rotated.rootPem, rotated.crossPem]);
    const { config, stateDir } = await installation({ trust: { installSystem: true } });
    await refreshTrust(config, new Date(), capture().log, true);
    // A scratch system store, as in system-trust.test.ts.
    const sys = join(dir, `system-${n}`);
    const local = join(sys, 'local');
    const etc = join(sys, 'etc');
    const hooks = join(sys, 'hooks');
    const share = join(sys, 'share');
    for (const d of [local, etc, hooks, share]) mkdirSync(d, { recursive: true });
    writeFileSync(join(sys, 'ca-certificates.conf'), '');
    const updater = [
      'update-ca-certificates',
      '--certsconf',
      join(sys, 'ca-certificates.conf'),
      '--certsdir',
      share,
      '--localcertsdir',
      local,
      '--etccertsdir',
      etc,
      '--hooksdir',
      hooks,
    ];
    expect(await installSystemTrust(config, loadTrust(stateDir)!, capture().log, local, updater)).toBe(true);
    const want = [ca.rootFingerprint, fingerprintOf(rotated.rootPem)].map((f) => `cert-agent-${f.slice(0, 16)}.crt`);
    want.sort();
    expect(readdirSync(local).sort()).toEqual(want);
    const store = readFileSync(join(etc, 'ca-certificates.crt'), 'utf8');
    expect(store).not.toContain(unrelated.rootPem.split('\n')[1]);
    expect(store).toContain(rotated.rootPem.split('\n')[1]);
  });

  it('cleans a widened trust.json on load, and on disk at the next pass; status says what was dropped', async () => {
    await ca.serveExtraRoots([]);
    const { config, configPath, stateDir } = await installation();
    const bundle = loadTrust(stateDir)!;
    bundle.roots.push({ fingerprint: unrelated.rootFingerprint, pem: unrelated.rootPem });
    // A root with a cross-certificate that is not for it: dropped too.
    const rotatedFp = fingerprintOf(rotated.rootPem);
    bundle.roots.push({ fingerprint: rotatedFp, pem: rotated.rootPem, crossPem: unrelated.rootPem });
    saveTrust(stateDir, bundle);

    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint]);
    const { doc } = await status(configPath);
    expect(doc.ca.trustedFingerprints).toEqual([ca.rootFingerprint]);
    expect(doc.ca.untrustedRoots.map((r: { fingerprint: string }) => r.fingerprint).sort()).toEqual(
      [unrelated.rootFingerprint, fingerprintOf(rotated.rootPem)].sort(),
    );

    const { log, events } = capture();
    await ensureTrust(config, new Date(), log);
    expect(onDisk(stateDir)).not.toContain(unrelated.rootPem.split('\n')[1]);
    expect(onDisk(stateDir)).not.toContain(rotated.rootPem.split('\n')[1]);
    const dropped = { event: 'trust_root_dropped', fingerprint: unrelated.rootFingerprint };
    expect(events).toContainEqual(expect.objectContaining(dropped));

    // A rotated root saved with its real cross-certificate stays.
    const healed = loadTrust(stateDir)!;
    healed.roots.push({ fingerprint: rotatedFp, pem: rotated.rootPem, crossPem: rotated.crossPem });
    saveTrust(stateDir, healed);
    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint, rotatedFp].sort());
  });
});

describe('a cross-signed root is trusted only when the cross-certificate limits nothing the root does not', () => {
  const limits: [string, { cross?: string[]; root?: string[] }, RegExp][] = [
    ['a pathLen', { cross: ['basicConstraints = critical, CA:TRUE, pathlen:0'] }, /pathLen 0 .*none on the root/],
    [
      'an extendedKeyUsage',
      { cross: ['extendedKeyUsage = clientAuth'] },
      /extendedKeyUsage 1\.3\.6\.1\.5\.5\.7\.3\.2 on the cross-certificate, none on the root/,
    ],
    [
      'name constraints',
      { cross: ['nameConstraints = critical, permitted;DNS:.team.test'] },
      /nameConstraints on the cross-certificate that the root does not carry/,
    ],
  ];
  for (const [what, ext, reason] of limits) {
    it(`refuses a new root whose cross-certificate carries ${what} the root does not; status says why`, async () => {
      const limited = await makeRotatedRoot(ca.pki, `limited ${what}`, ext);
      const limitedFp = fingerprintOf(limited.rootPem);
      await ca.serveExtraRoots([limited.rootPem, limited.crossPem]);
      const { config, configPath, stateDir } = await installation();
      const { log, events } = capture();
      expect(await refreshTrust(config, new Date(), log, true)).toEqual([]);
      expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint]);
      const refusal = events.find((e) => e.event === 'trust_root_refused' && e.fingerprint === limitedFp);
      expect(refusal?.reason).toMatch(
        /^cross-signed by a trusted root, but only within limits the root does not carry/,
      );
      expect(refusal?.reason).toMatch(reason);
      const { doc } = await status(configPath);
      expect(doc.ca.trustedFingerprints).toEqual([ca.rootFingerprint]);
      expect(doc.problems).toContainEqual(
        expect.stringMatching(new RegExp(`serves root ${limitedFp} .*within limits`)),
      );
    });
  }

  it('trusts a new root that carries the cross-certificate’s limits itself, or tighter ones', async () => {
    const constraints = 'nameConstraints = critical, permitted;DNS:.team.test';
    const carried = await makeRotatedRoot(ca.pki, 'carried', {
      cross: [
        'basicConstraints = critical, CA:TRUE, pathlen:2',
        'extendedKeyUsage = serverAuth, clientAuth',
        constraints,
      ],
      root: ['basicConstraints = critical, CA:TRUE, pathlen:1', 'extendedKeyUsage = serverAuth', constraints],
    });
    await ca.serveExtraRoots([carried.rootPem, carried.crossPem]);
    const { config, stateDir } = await installation();
    const { log, events } = capture();
    expect(await refreshTrust(config, new Date(), log, true)).toEqual([fingerprintOf(carried.rootPem)]);
    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint, fingerprintOf(carried.rootPem)].sort());
    expect(events.filter((e) => e.event === 'trust_root_refused')).toEqual([]);
  });

  it('drops on load a root that was adopted through a cross-certificate with limits the root lacks', async () => {
    const limited = await makeRotatedRoot(ca.pki, 'adopted before', {
      cross: ['basicConstraints = critical, CA:TRUE, pathlen:0'],
    });
    await ca.serveExtraRoots([]);
    const { config, stateDir } = await installation();
    const bundle = loadTrust(stateDir)!;
    const limitedFp = fingerprintOf(limited.rootPem);
    bundle.roots.push({ fingerprint: limitedFp, pem: limited.rootPem, crossPem: limited.crossPem });
    saveTrust(stateDir, bundle);
    expect(trustedFps(stateDir)).toEqual([ca.rootFingerprint]);
    expect(loadTrust(stateDir)!.refused).toContainEqual(
      expect.objectContaining({
        fingerprint: limitedFp,
        reason: expect.stringMatching(/^was in trust.json, but .*pathLen 0/),
      }),
    );
    const { log, events } = capture();
    await ensureTrust(config, new Date(), log);
    expect(onDisk(stateDir)).not.toContain(limited.rootPem.split('\n')[1]);
    expect(events).toContainEqual(expect.objectContaining({ event: 'trust_root_dropped', fingerprint: limitedFp }));
  });
});
