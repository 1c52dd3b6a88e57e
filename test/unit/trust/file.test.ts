/**
 * trust.json as the agent reads it: never trusting what the file claims.
 * A fingerprint is recomputed from the PEM; a root that matches no pin stays
 * only with a cross-certificate by a root kept before it (a rotation), and
 * what is dropped is listed for `status`; without pins (a root file) the
 * operator's roots all stay. Written 0644 and read back the same.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  droppedOnLoad,
  loadTrust,
  saveTrust,
  trustForPins,
  type TrustBundle,
  type TrustedRoot,
} from '../../../agent/trust/file.js';
import { makePki, makeRotatedRoot, fingerprintOf, type Pki } from '../../harness/pki.js';
import { modeOf, tempDir } from '../../helpers/agent.js';
import { makeCa } from '../../helpers/certs.js';

let dir: string;
let old: Pki;
let pinned: TrustedRoot;
let rotated: TrustedRoot;
let stranger: TrustedRoot;
let n = 0;

/** A state directory holding `bundle` as trust.json. */
function stateWith(bundle: Partial<TrustBundle>): string {
  const state = join(dir, `state-${++n}`);
  mkdirSync(state);
  writeFileSync(join(state, 'trust.json'), JSON.stringify({ bootstrappedAt: '2026-01-01T00:00:00Z', ...bundle }));
  return state;
}
const fps = (b: TrustBundle | undefined) => b?.roots.map((r) => r.fingerprint);

beforeAll(async () => {
  dir = tempDir('cert-agent-trustfile-');
  old = await makePki(join(dir, 'old'), 'old');
  const next = await makeRotatedRoot(old);
  const other = await makeCa('Stranger');
  pinned = { fingerprint: fingerprintOf(old.rootPem), pem: old.rootPem };
  rotated = { fingerprint: fingerprintOf(next.rootPem), pem: next.rootPem, crossPem: next.crossPem };
  stranger = { fingerprint: other.fingerprint, pem: other.root.pem };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadTrust', () => {
  it('keeps the pinned root and a root it cross-signed; nothing is dropped', () => {
    const bundle = loadTrust(stateWith({ pins: [pinned.fingerprint], roots: [pinned, rotated] }));
    expect(fps(bundle)).toEqual([pinned.fingerprint, rotated.fingerprint]);
    expect(droppedOnLoad(bundle!)).toEqual([]);
  });

  it('drops a root that matches no pin and has no cross-certificate, and lists it as refused', () => {
    const bundle = loadTrust(stateWith({ pins: [pinned.fingerprint], roots: [pinned, stranger] }))!;
    expect(fps(bundle)).toEqual([pinned.fingerprint]);
    const refused = {
      fingerprint: stranger.fingerprint,
      subject: 'CN=Stranger Root CA',
      root: true,
      reason: 'was in trust.json, but matches no pin and is not cross-signed by a trusted root: dropped',
    };
    expect(droppedOnLoad(bundle)).toEqual([refused]);
    expect(bundle.refused).toEqual([refused]);
  });

  it('drops a cross-signed root whose pinned signer is gone from the file', () => {
    expect(loadTrust(stateWith({ pins: ['ab'.repeat(32)], roots: [rotated] }))).toBeUndefined();
  });

  it('drops a root whose fingerprint in the file is not its own', () => {
    const forged = { ...stranger, fingerprint: pinned.fingerprint };
    expect(fps(loadTrust(stateWith({ pins: [pinned.fingerprint], roots: [forged, pinned] })))).toEqual([
      pinned.fingerprint,
    ]);
  });

  it('without pins (a root file) keeps every root in the file', () => {
    expect(fps(loadTrust(stateWith({ pins: [], roots: [pinned, stranger] })))).toEqual([
      pinned.fingerprint,
      stranger.fingerprint,
    ]);
  });

  it('a missing, unreadable or empty file is no trust at all', () => {
    expect(loadTrust(join(dir, 'nowhere'))).toBeUndefined();
    const broken = join(dir, 'broken');
    mkdirSync(broken);
    writeFileSync(join(broken, 'trust.json'), '{"pins": [');
    expect(loadTrust(broken)).toBeUndefined();
    expect(loadTrust(stateWith({ pins: [pinned.fingerprint], roots: [] }))).toBeUndefined();
  });
});

describe('saveTrust and trustForPins', () => {
  it('writes trust.json 0644 and reads the same bundle back for the same pins, in any order', () => {
    const state = join(dir, 'saved');
    mkdirSync(state);
    const bundle: TrustBundle = {
      pins: [pinned.fingerprint, 'cd'.repeat(32)],
      roots: [pinned],
      bootstrappedAt: '2026-01-01T00:00:00.000Z',
    };
    saveTrust(state, bundle);
    expect(modeOf(join(state, 'trust.json'))).toBe(0o644);
    expect(trustForPins(state, ['cd'.repeat(32), pinned.fingerprint])).toEqual(bundle);
    expect(trustForPins(state, [pinned.fingerprint])).toBeUndefined(); // other pins: bootstrap again
  });
});
