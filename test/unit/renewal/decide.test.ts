/**
 * The renewal decision (agent/renewal/decide.ts) on its own: which installed
 * set is replaced, with which reason, and in which order the reasons win,
 * with real certificates from an in-process CA and the configuration through
 * the real validator; then the rest of the decision (the names consumers
 * read, a failed reload, force) as a table with the clock injected.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateConfig, type Config } from '../../../agent/config/config.js';
import { assessSet } from '../../../agent/pki/assess.js';
import { decide, publishedNeeds, renewReason, type DecisionInput } from '../../../agent/renewal/decide.js';
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

/** The reason to renew the pass would give, or undefined when it would not renew. */
function renewalReason(set: LiveSet | undefined, cfg: Config, trusted: X509Certificate[], now: Date) {
  const findings = set ? assessSet(set, { domains: cfg.certificate.domains, roots: trusted, now }).findings : [];
  const published = { lacking: [], restored: [] };
  return renewReason(decide({ live: set, findings, published, state: {}, config: cfg, now }));
}

const roots = () => [new X509Certificate(ca.root.pem)];
const at = (fraction: number) =>
  new Date(NOT_BEFORE.getTime() + fraction * (NOT_AFTER.getTime() - NOT_BEFORE.getTime()));

beforeAll(async () => {
  ca = await makeCa('Decision');
  other = await makeCa('Other');
  leaf = await ca.leaf({ domains: ['app.internal', '10.0.0.5'], notBefore: NOT_BEFORE, notAfter: NOT_AFTER });
});

describe('decide: the reason to renew', () => {
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

describe('decide: renew, reload or nothing, with the reason and the next moment', () => {
  const cfg = (target = 'nginx') => ({ renewal: { at: 0.5, jitter: 0 }, reload: { target } });
  const failedReload = { reload: { target: 'nginx', at: '2026-01-01T00:00:00Z', ok: false } };
  const okReload = { reload: { target: 'nginx', at: '2026-01-01T00:00:00Z', ok: true } };
  const none = { lacking: [], restored: [] };
  const placeholderFinding = { code: 'placeholder', severity: 'warning', message: 'the placeholder' } as const;
  const expiredFinding = { code: 'expired', severity: 'critical', message: 'expired' } as const;
  type Row = [string, Partial<DecisionInput> & { fraction?: number }, string, string];
  const rows: Row[] = [
    ['not due', {}, 'nothing', 'not due'],
    ['forced', { force: true }, 'renew', 'forced'],
    ['forced over a critical finding', { force: true, findings: [expiredFinding] }, 'renew', 'forced'],
    ['a critical finding', { findings: [expiredFinding] }, 'renew', 'expired'],
    ['the placeholder', { findings: [placeholderFinding] }, 'renew', 'the placeholder'],
    [
      'a name the live set lacks',
      { published: { lacking: ['chain.pem'], restored: [] } },
      'renew',
      'the live set lacks chain.pem',
    ],
    [
      'due before lacking names',
      { fraction: 0.6, published: { lacking: ['chain.pem'], restored: [] } },
      'renew',
      'renewal due since',
    ],
    ['a reload that failed', { state: failedReload }, 'reload', 'not due'],
    ['a reload that succeeded', { state: okReload }, 'nothing', 'not due'],
    [
      'names restored',
      { published: { lacking: [], restored: ['key.pem', 'fullchain.pem'] } },
      'reload',
      'not due; restored key.pem, fullchain.pem',
    ],
    [
      'names restored, no consumer',
      { published: { lacking: [], restored: ['key.pem'] }, config: cfg('none') },
      'nothing',
      'not due; restored key.pem',
    ],
  ];
  it.each(rows)('%s', (_name, row, action, reason) => {
    const set = live(leaf);
    const now = at(row.fraction ?? 0.25);
    const input: DecisionInput = { live: set, findings: [], published: none, state: {}, config: cfg(), now, ...row };
    const decision = decide(input);
    expect(decision.action).toBe(action);
    expect(decision.reason.startsWith(reason)).toBe(true);
    expect(decision.next?.toISOString()).toBe(at(0.5).toISOString());
  });

  it('reloads a consumer that never took the live set (a pass killed between the install and the reload)', () => {
    const serial = new X509Certificate(leaf.pem).serialNumber.toLowerCase();
    const base = { live: live(leaf), findings: [], published: none, config: cfg(), now: at(0.25) };
    const reloadedFor = (s: string) => ({ reload: { ...okReload.reload, serial: s } });
    expect(decide({ ...base, state: reloadedFor('0badc0de') })).toMatchObject({
      action: 'reload',
      reason: 'not due; the consumer was last reloaded for serial 0badc0de',
    });
    expect(decide({ ...base, state: reloadedFor(serial) }).action).toBe('nothing');
    // A record without a serial (0.1.0's): nothing to compare it with.
    expect(decide({ ...base, state: okReload }).action).toBe('nothing');
    expect(decide({ ...base, state: reloadedFor('0badc0de'), config: cfg('none') }).action).toBe('nothing');
  });

  it('renews without a live set, with no next moment', () => {
    const decision = decide({
      live: undefined,
      findings: [],
      published: none,
      state: failedReload,
      config: cfg(),
      now: at(0.1),
    });
    expect(decision).toEqual({ action: 'renew', reason: 'no certificate installed', next: undefined });
  });

  it('reads the names consumers read: dangling ones need a new set, the others a restored link', () => {
    const problems = [
      { name: 'key.pem', state: 'ok' },
      { name: 'chain.pem', state: 'dangling' },
      { name: 'fullchain.pem', state: 'regular-file' },
      { name: 'cert.pem', state: 'missing' },
    ];
    expect(publishedNeeds(problems)).toEqual({ lacking: ['chain.pem'], restored: ['fullchain.pem', 'cert.pem'] });
  });
});
