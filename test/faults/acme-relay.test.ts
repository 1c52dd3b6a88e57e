/**
 * ACME answers a real step-ca does not give on its own, made by a relay in
 * front of it (test/faults/hostile-servers.ts): a Retry-After on polls, an
 * order that never completes, an HTTP 500 that is the CA's own failure, and
 * a 500 that hides a lost account (as older step-ca releases answer). The
 * agent runs as the bundle; every certificate comes from the real CA.
 */
import { connect } from 'node:net';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { agentPaths, checkLive, writeConfig, type AgentPaths } from './common.js';
import { startAcmeRelay, type AcmeRelay, type Intercept } from './hostile-servers.js';
import { record } from './table.js';

let ca: StepCa;
let relay: AcmeRelay;
let intercept: Intercept = () => undefined;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  ca = await startStepCa();
  relay = await startAcmeRelay(ca, (req, up) => intercept(req, up));
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await relay?.close();
  await ca?.cleanup();
});

/** Every renewal here is an ACME order (renewal.method acme): the relay rewrites ACME, not the CA's renewal API. */
function container(extra: { renewal?: Record<string, unknown> } = {}): AgentPaths {
  const p = agentPaths();
  cleanups.push(() => rmSync(p.dir, { recursive: true, force: true }));
  const renewal = { method: 'acme', ...extra.renewal };
  writeConfig(p, { url: relay.url, rootFingerprint: ca.rootFingerprint }, ca.acmeHttpPort, { ...extra, renewal });
  return p;
}

const renew = (p: AgentPaths, force = false) =>
  runAgent(['renew', ...(force ? ['--force'] : []), '--config', p.config], {
    env: { CERT_AGENT_LOG_LEVEL: 'info' },
    timeoutMs: 90_000,
  });
const events = (stderr: string, event: string) => stderr.split('\n').filter((l) => l.includes(`"event":"${event}"`));
const problem = (status: number, type: string, detail: string) => ({
  status,
  headers: { 'content-type': 'application/problem+json' },
  body: JSON.stringify({ type: `urn:ietf:params:acme:error:${type}`, detail, status }),
});

/** Challenge answers say "processing" and the next `pending` authorization polls say "pending", with Retry-After. */
function slowValidation(pending: number, retryAfter: string): { polls: number[] } {
  const seen = { polls: [] as number[] };
  let validating = false;
  intercept = (req, up) => {
    if (req.method !== 'POST' || up.status >= 300) return undefined;
    if (req.path.includes('/challenge/')) {
      validating = true;
      const body = JSON.parse(up.body) as Record<string, unknown>;
      delete body.error;
      return { status: up.status, body: JSON.stringify({ ...body, status: 'processing' }) };
    }
    if (validating && req.path.includes('/authz/')) {
      seen.polls.push(Date.now());
      if (seen.polls.length > pending) return undefined;
      const body = JSON.parse(up.body) as Record<string, unknown>;
      const stillPending = JSON.stringify({ ...body, status: 'pending' });
      return { status: up.status, headers: { 'retry-after': retryAfter }, body: stillPending };
    }
    return undefined;
  };
  return seen;
}

describe('ACME answers the agent must read right', () => {
  it('Retry-After on authorization polls is honoured', async ({ task }) => {
    const p = container();
    const seen = slowValidation(3, '2');
    try {
      const r = await renew(p);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      intercept = () => undefined;
    }
    expect(checkLive(p.certDir, ca.rootPem).ok).toBe(true);
    const gaps = seen.polls.slice(1).map((t, i) => t - seen.polls[i]!);
    expect(gaps).toHaveLength(3);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(1_900);
    record(task, {
      scenario: 'ACME: Retry-After',
      injected: 'three authorization polls answered "pending" with Retry-After: 2',
      expected: 'polls 2 s apart, then issued',
      observed: `gaps ${gaps.map((g) => (g / 1000).toFixed(2)).join(', ')} s; certificate installed`,
    });
  }, 60_000);

  it('an order that never completes is abandoned at renewal.orderTimeout, the listener released', async ({ task }) => {
    const p = container({ renewal: { orderTimeout: 10 } });
    slowValidation(Number.MAX_SAFE_INTEGER, '1');
    const started = Date.now();
    let heldMidway: boolean;
    try {
      const run = renew(p);
      await new Promise((r) => setTimeout(r, 5_000));
      heldMidway = await listening(ca.acmeHttpPort);
      const r = await run;
      const secs = (Date.now() - started) / 1000;
      expect(r.code, r.stderr).toBe(69);
      expect(r.stderr).toMatch(/the ACME order did not complete within 10s \(renewal\.orderTimeout\); it was/);
      expect(secs).toBeGreaterThanOrEqual(9);
      expect(secs).toBeLessThan(20);
      expect(heldMidway).toBe(true);
      expect(await listening(ca.acmeHttpPort)).toBe(false);
      record(task, {
        scenario: 'ACME: order never completes',
        injected: 'authorization "pending" for ever (Retry-After: 1), renewal.orderTimeout 10',
        expected: 'abandoned at the deadline, exit 69, listener released',
        observed: `exit ${r.code} after ${secs.toFixed(1)} s; listener open at 5 s, closed after`,
      });
    } finally {
      intercept = () => undefined;
    }
  }, 60_000);

  it('the daemon abandons such an order at the deadline, then holds neither lock nor port', async ({ task }) => {
    const p = container({ renewal: { orderTimeout: 10 } });
    slowValidation(Number.MAX_SAFE_INTEGER, '1');
    const d = new DaemonProcess(p.config);
    cleanups.push(() => d.stop());
    try {
      await new Promise((r) => setTimeout(r, 5_000));
      const lock = join(p.stateDir, 'lock');
      const midway = { lock: existsSync(lock), port: await listening(ca.acmeHttpPort) };
      const [failed] = await d.waitFor('renewal_failed', 1, 30_000);
      expect(String(failed!.error)).toMatch(/did not complete within 10s/);
      expect(failed!.errorKind).toBe('ca-unavailable');
      let released = false;
      for (let i = 0; i < 40 && !released; i++) {
        released = !existsSync(lock);
        if (!released) await new Promise((r) => setTimeout(r, 50));
      }
      const portAfter = await listening(ca.acmeHttpPort);
      expect(midway).toEqual({ lock: true, port: true });
      expect(released).toBe(true);
      expect(portAfter).toBe(false);
      expect(d.events('internal_error')).toEqual([]);
      record(task, {
        scenario: 'ACME: order never completes (daemon)',
        injected: 'the daemon meets an authorization "pending" for ever, renewal.orderTimeout 10',
        expected: 'pass fails at the deadline; lock and port released; daemon runs on',
        observed:
          `renewal_failed (${failed!.errorKind}) after the deadline; lock and listener held at 5 s, ` +
          `both released at once after; next attempt ${failed!.nextAttempt}`,
      });
    } finally {
      intercept = () => undefined;
      await d.stop();
    }
  }, 60_000);

  it("an HTTP 500 from a CA that still knows the account is the CA's error, in its words", async ({ task }) => {
    const p = container();
    const first = await renew(p);
    expect(first.code, first.stderr).toBe(0);
    let failed = 0;
    const fire = problem(500, 'serverInternal', 'the database is on fire');
    intercept = (req) => (req.path.endsWith('/new-order') && failed++ === 0 ? fire : undefined);
    try {
      const r = await renew(p, true);
      expect(events(r.stderr, 'account_unknown')).toEqual([]);
      expect(events(r.stderr, 'account_registered')).toEqual([]);
      expect(r.code, r.stderr).toBe(76);
      expect(r.stderr).toMatch(/ACME new order failed: the database is on fire \(serverInternal\)/);
      record(task, {
        scenario: 'ACME: HTTP 500, account known',
        injected: 'new-order answered 500 serverInternal once',
        expected: 'CA error in its words (76), no re-registration',
        observed: `exit ${r.code}: "${r.stderr.trim().split('\n').pop()!.slice(0, 120)}"`,
      });
    } finally {
      intercept = () => undefined;
    }
  }, 60_000);

  it('an HTTP 500 for an account the CA lost (older step-ca) registers again and issues', async ({ task }) => {
    const p = container();
    const first = await renew(p);
    expect(first.code, first.stderr).toBe(0);
    await ca.resetDatabase();
    const internal = problem(500, 'serverInternal', 'The server experienced an internal error');
    const lost = (path: string, body: string) => path.endsWith('/new-order') && body.includes('accountDoesNotExist');
    intercept = (req, up) => (lost(req.path, up.body) ? internal : undefined);
    try {
      const r = await renew(p, true);
      expect(r.code, r.stderr).toBe(0);
      expect(events(r.stderr, 'account_unknown')).toHaveLength(1);
      expect(events(r.stderr, 'account_registered')).toHaveLength(1);
      expect(checkLive(p.certDir, ca.rootPem).ok).toBe(true);
      record(task, {
        scenario: 'ACME: HTTP 500, account lost',
        injected: 'CA database reset; new-order answered 500 instead of accountDoesNotExist',
        expected: 'asks the CA (onlyReturnExisting), registers again, issues',
        observed: `exit ${r.code}; account_unknown then account_registered; certificate installed`,
      });
    } finally {
      intercept = () => undefined;
    }
  }, 60_000);
});

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}
