/** The text rendering's details that a process test cannot see: colour on a terminal, plain otherwise, relative times. */
import { describe, expect, it } from 'vitest';
import { bar, human, relative, renderStatus, renderStatusLine } from '../../../agent/report/status-text.js';
import type { StatusReport } from '../../../agent/report/status.js';

const now = new Date('2026-03-01T12:00:00Z');
const report: StatusReport = {
  schema: 'cert-agent.status/v2',
  status: 'WARNING',
  problems: ['renewal overdue since 2026-03-01T11:00:00.000Z'],
  checkedAt: now.toISOString(),
  certificate: {
    configuredNames: ['a.internal'],
    names: ['a.internal'],
    missingNames: [],
    serial: '1a2b',
    subject: 'CN=a.internal',
    issuer: 'CN=Int',
    notBefore: '2026-02-28T16:00:00.000Z',
    notAfter: '2026-03-01T16:00:00.000Z',
    lifetimeUsed: 0.833,
    secondsToExpiry: 14400,
    expired: false,
    placeholder: false,
    keyMatches: true,
    chainVerifies: true,
    chainProblem: null,
    directory: '/etc/cert-agent/tls',
    set: 's1',
    publishedNames: [],
  },
  renewal: {
    next: '2026-03-01T08:48:00.000Z',
    due: true,
    nextAttempt: null,
    lastAttempt: null,
    lastSuccess: null,
    consecutiveFailures: 0,
    caOutageAllowance: null,
  },
  ca: {
    url: 'https://ca:9000',
    directory: 'https://ca:9000/acme/acme/directory',
    pinnedFingerprints: ['ab'.repeat(32)],
    trustedFingerprints: ['ab'.repeat(32)],
    trust: 'ok',
    trustDetail: null,
    offeredFingerprints: [],
  },
  reload: { target: 'none', verify: null, lastResult: null, servedMatches: null },
};

describe('renderStatus', () => {
  it('plain: no escape sequences, an ASCII bar', () => {
    const text = renderStatus(report, { color: false, now });
    expect(text).not.toMatch(/\u001b/);
    expect(text).toContain('[#################...] 83% used');
    expect(text).toContain('(due since 3h12m)');
    expect(text).toContain('(in 4h00m)');
  });
  it('terminal: the verdict in colour and a block bar', () => {
    const text = renderStatus(report, { color: true, now });
    expect(text).toContain('\u001b[33mWARNING\u001b[0m');
    expect(text).toContain('█'.repeat(17));
  });
});

describe('text from outside never reaches the terminal raw', () => {
  // What a proxy or the CA could put into an error the report quotes: a title, a screen clear, C1 CSI, DEL.
  const hostile = 'refused \u001b]0;owned\u0007\u001b[2J\u009b31m\u007f end\u0000';
  const quoting: StatusReport = {
    ...report,
    problems: [`last attempt failed: ${hostile}`, `also\t${hostile}`],
    reload: { ...report.reload, lastResult: { at: now.toISOString(), ok: false, detail: hostile, servedSerial: null } },
    ca: { ...report.ca, trustDetail: hostile, trust: 'broken' },
  };
  const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
  it("status (plain and colour): every control character of a report's text is replaced", () => {
    const plain = renderStatus(quoting, { color: false, now });
    expect(plain).not.toMatch(CONTROLS);
    expect(plain).toContain('refused ?]0;owned??[2J?31m? end?');
    // Colour comes only from the renderer's own sequences.
    const colour = renderStatus(quoting, { color: true, now }).replace(/\u001b\[[0-9;]*m/g, '');
    expect(colour).not.toMatch(CONTROLS);
  });
  it('status --line: still seven tab-separated fields, no control character in any', () => {
    const line = renderStatusLine(quoting, now);
    expect(line.endsWith('\n')).toBe(true);
    const fields = line.slice(0, -1).split('\t');
    expect(fields).toHaveLength(7);
    for (const f of fields) expect(f).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(fields[6]).toBe('last attempt failed: refused ?]0;owned??[2J?31m? end?');
  });
});

describe('bar, human, relative', () => {
  it('clamps the bar to its width', () => {
    expect(bar(-0.2, false)).toBe(`[${'.'.repeat(20)}]`);
    expect(bar(1.7, false)).toBe(`[${'#'.repeat(20)}]`);
  });
  it('writes durations the short way', () => {
    expect(human(3 * 3600 + 12 * 60 + 5)).toBe('3h12m');
    expect(human(2 * 86400 + 4 * 3600)).toBe('2d4h');
    expect(human(307)).toBe('5m07s');
    expect(human(-42)).toBe('42s');
  });
  it('says in … or … ago', () => {
    expect(relative('2026-03-01T15:12:00Z', now)).toBe('in 3h12m');
    expect(relative('2026-03-01T11:59:30Z', now)).toBe('30s ago');
  });
});
