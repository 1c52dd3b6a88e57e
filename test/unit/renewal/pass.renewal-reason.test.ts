/**
 * The renewal decision on its own: which installed set is replaced, with
 * which reason, and in which order the reasons win. Real certificates from an
 * in-process CA; the configuration comes through the real validator.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateConfig, type Config } from '../../../agent/config/config.js';
import { renewalReason } from '../../../agent/renewal/pass.js';
import type { LiveSet } from '../../../agent/store/sets.js';
import { makeCa, newKey, selfSigned, type Leaf, type TestCa } from '../../helpers/certs.js';

const HOUR = 3600_000;
const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
// Whole seconds: certificates carry no milliseconds.
const NOT_BEFORE = new Date(Math.floor(Date.now() / 1000) * 1000 - 2 * HOUR);
const NOT_AFTER = new Date(NOT_BEFORE.getTime() + 24 * HOUR);
let ca: TestCa;
let other: TestCa;
let leaf: Leaf;

function config(domains: string[], renewal: { at: number; jitter: number } = { at: 0.5, jitter: 0 }): Config {
  return validateConfig({
    ca: { url: 'https://ca.internal:9000', fingerprint: FP },
    certificate: { domains },
    renewal,
  });
}

function live(l: Leaf, opts: { keyPem?: string; placeholder?: boolean; intermediates?: string[] } = {}): LiveSet {
  return {
    id: 'set-1',
    path: '/nonexistent/.sets/set-1',
    keyPem: opts.keyPem ?? l.keyPem,
    cert: new X509Certificate(l.pem),
    intermediates: (opts.intermediates ?? [ca.intermediate.pem]).map((p) => new X509Certificate(p)),
    placeholder: opts.placeholder ?? false,
  };
}

const roots = () => [new X509Certificate(ca.root.pem)];
const at = (fraction: number) =>
  new Date(NOT_BEFORE.getTime() + fraction * (NOT_AFTER.getTime() - NOT_BEFORE.getTime()));

beforeAll(async () => {
  ca = await makeCa('Decision');
  other = await makeCa('Other');
  leaf = await ca.leaf({ domains: ['app.internal', '10.0.0.5'], notBefore: NOT_BEFORE, notAfter: NOT_AFTER });
});

describe('renewalReason', () => {
  it('keeps a valid, matching, complete set that is not yet due', () => {
    expect(renewalReason(live(leaf), config(['app.internal', '10.0.0.5']), roots(), at(0.25))).toBeUndefined();
  });

  it('renews when nothing is installed', () => {
    expect(renewalReason(undefined, config(['app.internal']), roots(), at(0.1))).toBe('no certificate installed');
  });

  it('renews a placeholder even when it is fresh and matches', async () => {
    const ph = await selfSigned(['app.internal'], NOT_BEFORE, NOT_AFTER);
    const set = { ...live(ph, { intermediates: [] }), placeholder: true };
    expect(renewalReason(set, config(['app.internal']), roots(), at(0.1))).toMatch(
      /^the self-signed placeholder is in use/,
    );
  });

  it('renews when the key on disk does not belong to the certificate', async () => {
    const stranger = await newKey();
    const reason = renewalReason(live(leaf, { keyPem: stranger.pem }), config(['app.internal']), roots(), at(0.1));
    expect(reason).toBe(`certificate ${leaf.cert.serialNumber.toLowerCase()} does not match the private key`);
  });

  it('renews when the configuration names a domain the certificate lacks, naming only the missing ones', () => {
    const reason = renewalReason(
      live(leaf),
      config(['app.internal', 'api.internal', '10.0.0.5', '10.0.0.6']),
      roots(),
      at(0.1),
    );
    expect(reason).toBe(
      `certificate ${leaf.cert.serialNumber.toLowerCase()} lacks the configured names api.internal, 10.0.0.6`,
    );
  });

  it('keeps a certificate with more names than configured', () => {
    expect(renewalReason(live(leaf), config(['10.0.0.5']), roots(), at(0.1))).toBeUndefined();
  });

  it('renews a certificate that does not chain to the trusted roots', () => {
    const reason = renewalReason(live(leaf), config(['app.internal']), [new X509Certificate(other.root.pem)], at(0.1));
    expect(reason).toMatch(/^certificate [0-9a-f]+ does not verify to the pinned root: /);
  });

  it('renews a certificate whose intermediate is missing', () => {
    const reason = renewalReason(live(leaf, { intermediates: [] }), config(['app.internal']), roots(), at(0.1));
    expect(reason).toMatch(/^certificate [0-9a-f]+ does not verify to the pinned root: /);
  });

  it('renews an expired certificate', () => {
    const reason = renewalReason(live(leaf), config(['app.internal']), roots(), new Date(NOT_AFTER.getTime() + HOUR));
    expect(reason).toMatch(/^certificate [0-9a-f]+ expired at /);
  });

  it('is due exactly at the configured fraction of the lifetime (no jitter), not a millisecond before', () => {
    const due = at(0.5);
    const cfg = config(['app.internal']);
    expect(renewalReason(live(leaf), cfg, roots(), new Date(due.getTime() - 1))).toBeUndefined();
    expect(renewalReason(live(leaf), cfg, roots(), due)).toBe(`renewal due since ${due.toISOString()}`);
    expect(renewalReason(live(leaf), cfg, roots(), at(0.9))).toBe(`renewal due since ${due.toISOString()}`);
  });

  it('moves the due time with renewal.at', () => {
    const cfg = config(['app.internal'], { at: 0.8, jitter: 0 });
    expect(renewalReason(live(leaf), cfg, roots(), at(0.79))).toBeUndefined();
    expect(renewalReason(live(leaf), cfg, roots(), at(0.81))).toBe(`renewal due since ${at(0.8).toISOString()}`);
  });

  it('keeps the jittered due time within [at - jitter, at] and the same for the same certificate', () => {
    const cfg = config(['app.internal'], { at: 0.6, jitter: 0.2 });
    const dueOf = (now: Date) => renewalReason(live(leaf), cfg, roots(), now);
    expect(dueOf(at(0.39))).toBeUndefined();
    const reason = dueOf(at(0.61));
    const due = new Date(/since (.*)$/.exec(reason ?? '')?.[1] ?? NaN);
    expect(due.getTime()).toBeGreaterThanOrEqual(at(0.4).getTime() - 1);
    expect(due.getTime()).toBeLessThanOrEqual(at(0.6).getTime() + 1);
    expect(dueOf(at(0.61))).toBe(reason);
  });

  it('gives the first reason in order: key before names, names before chain, a placeholder only when nothing is worse', async () => {
    const stranger = await newKey();
    const wide = config(['app.internal', 'missing.internal']);
    const wrongRoots = [new X509Certificate(other.root.pem)];
    const serial = leaf.cert.serialNumber.toLowerCase();
    expect(renewalReason(live(leaf, { keyPem: stranger.pem, placeholder: true }), wide, wrongRoots, at(0.9))).toBe(
      `certificate ${serial} does not match the private key`,
    );
    expect(renewalReason(live(leaf, { placeholder: true }), config(['app.internal']), wrongRoots, at(0.9))).toMatch(
      /^the self-signed placeholder is in use/,
    );
    expect(renewalReason(live(leaf, { keyPem: stranger.pem }), wide, wrongRoots, at(0.9))).toBe(
      `certificate ${serial} does not match the private key`,
    );
    expect(renewalReason(live(leaf), wide, wrongRoots, at(0.9))).toBe(
      `certificate ${serial} lacks the configured names missing.internal`,
    );
    expect(renewalReason(live(leaf), config(['app.internal']), wrongRoots, at(0.9))).toMatch(/does not verify/);
  });
});
