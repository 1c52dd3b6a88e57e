/**
 * Hostile or broken CAs. The agent has a valid certificate from a real
 * step-ca; then `renew --force` meets: a CA with another root than the pin,
 * a man in the middle whose TLS certificate comes from another root, and
 * "CAs" (TLS chaining to a pinned root) whose /roots answers garbage, an
 * endless body, nothing at all, or a trickle, one answering every ACME
 * request with HTTP 500, and one whose TLS leaf OpenSSL refuses for a server
 * (nsCertType = client): OpenSSL decides the connection, not the agent.
 * Each must end with a documented exit code and one clear line in bounded
 * time, and leave the certificate directory untouched.
 */
import { cpSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMitm } from '../harness/mitm.js';
import { makeOtherCa, startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { agentPaths, checkLive, plainLines, snapshot, writeConfig, type AgentPaths } from './common.js';
import { startHostileCa, type Behaviour } from './hostile-servers.js';
import { record } from './table.js';

let ca: StepCa;
let base: AgentPaths;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  ca = await startStepCa();
  base = agentPaths();
  writeConfig(base, ca, ca.acmeHttpPort);
  const r = await runAgent(['renew', '--config', base.config]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await ca?.cleanup();
  if (base) rmSync(base.dir, { recursive: true, force: true });
});

/** A container with the base's live certificate (and, if asked, its pinned trust) pointed at another CA. */
function container(target: { url: string; rootFingerprint: string }, keepTrust = false): AgentPaths {
  const p = agentPaths();
  cleanups.push(() => rmSync(p.dir, { recursive: true, force: true }));
  cpSync(base.certDir, p.certDir, { recursive: true, verbatimSymlinks: true });
  if (keepTrust) cpSync(base.stateDir, p.stateDir, { recursive: true });
  writeConfig(p, target, ca.acmeHttpPort);
  return p;
}

interface Outcome {
  code: number;
  line: string;
  lines: number;
  secs: number;
  untouched: boolean;
}

async function forcedRenew(p: AgentPaths): Promise<Outcome> {
  const before = snapshot(p.certDir);
  const started = Date.now();
  const r = await runAgent(['renew', '--force', '--config', p.config], { timeoutMs: 90_000 });
  const plain = plainLines(r.stderr);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(checkLive(p.certDir, ca.rootPem).ok).toBe(true);
  return {
    code: r.code,
    line: plain[0] ?? '',
    lines: plain.length,
    secs: (Date.now() - started) / 1000,
    untouched: snapshot(p.certDir).join('\n') === before.join('\n'),
  };
}

const observed = (o: Outcome) =>
  `exit ${o.code} after ${o.secs.toFixed(1)} s: "${o.line.slice(0, 150)}"; certificate dir ${o.untouched ? 'untouched' : 'CHANGED'}`;

describe.concurrent('hostile or broken CA', () => {
  it('a CA whose root is not the pinned one', async ({ task }) => {
    const other = await makeOtherCa();
    const o = await forcedRenew(container({ url: ca.url, rootFingerprint: other.rootFingerprint }));
    expect(o).toMatchObject({ code: 65, lines: 1, untouched: true });
    expect(o.line).toContain(`expected ${other.rootFingerprint}`);
    expect(o.line).toContain(ca.rootFingerprint);
    record(task, {
      scenario: 'CA: wrong root',
      injected: 'pin a root the CA does not serve',
      expected: 'refused (65), both fingerprints named, cert kept',
      observed: observed(o),
    });
  });

  it('a man in the middle with a TLS certificate from another root', async ({ task }) => {
    const mitm = await startMitm(ca);
    cleanups.push(() => mitm.close());
    const pinned = await forcedRenew(container({ url: mitm.url, rootFingerprint: ca.rootFingerprint }, true));
    const first = await forcedRenew(container({ url: mitm.url, rootFingerprint: ca.rootFingerprint }));
    for (const o of [pinned, first]) {
      expect(o).toMatchObject({ code: 65, lines: 1, untouched: true });
      expect(o.line).toMatch(/does not verify against the pinned CA root|no longer offers the pinned root/);
    }
    expect(mitm.requests.filter((r) => r.includes('/acme/'))).toEqual([]);
    record(task, {
      scenario: 'CA: TLS from another root',
      injected: 'MITM relaying to the real CA (serves the real /roots), with pinned trust and at first contact',
      expected: 'refused (65), no ACME request sent, cert kept',
      observed: `pinned: ${observed(pinned)}; first contact: exit ${first.code}; ACME requests through the MITM: 0`,
    });
  });

  const broken: [Behaviour, string, number, number, RegExp][] = [
    ['garbage', '/roots answers 201 with bytes that are not JSON', 76, 10, /did not answer JSON/],
    ['huge', '/roots answers an endless body (up to 256 MiB)', 76, 10, /more than 1048576 bytes/],
    ['silent', '/roots accepts the connection and never answers', 69, 20, /did not answer in time/],
    ['drip', '/roots sends headers, then one byte a second forever', 69, 20, /did not answer in time|cannot reach/],
    [
      'http500',
      'valid /roots, then HTTP 500 serverInternal for every ACME request',
      76,
      15,
      /500|serverInternal|database is on fire/,
    ],
    [
      'clientLeaf',
      'TLS leaf from the pinned root with nsCertType = client (a client-only certificate to OpenSSL)',
      65,
      10,
      /does not verify against the pinned CA root \(INVALID_PURPOSE/,
    ],
  ];
  for (const [behaviour, injected, code, maxSecs, message] of broken) {
    it(`a broken CA: ${injected}`, async ({ task }) => {
      const hostile = await startHostileCa(behaviour);
      cleanups.push(() => hostile.close());
      const o = await forcedRenew(container(hostile));
      expect(o, o.line).toMatchObject({ code, lines: 1, untouched: true });
      expect(o.line).toMatch(message);
      expect(o.secs).toBeLessThan(maxSecs);
      if (behaviour === 'huge') expect(hostile.hugeSent).toBeLessThan(64 * 2 ** 20);
      const extra =
        behaviour === 'huge'
          ? `; the CA got to send ${(hostile.hugeSent / 2 ** 20).toFixed(1)} MiB before the agent hung up`
          : '';
      record(task, {
        scenario: `CA: ${behaviour}`,
        injected,
        expected: `clear error (exit ${code}) within ${maxSecs} s, cert kept`,
        observed: observed(o) + extra,
      });
    }, 60_000);
  }

  it('the daemon facing a broken CA keeps running and keeps its certificate', async ({ task }) => {
    const hostile = await startHostileCa('garbage');
    cleanups.push(() => hostile.close());
    const p = container(hostile);
    const before = checkLive(p.certDir, ca.rootPem);
    const d = new DaemonProcess(p.config);
    cleanups.push(() => d.stop());
    const [failed] = await d.waitFor('renewal_failed', 1, 20_000);
    const status = await runAgent(['status', '--json', '--config', p.config]);
    expect(d.events('internal_error')).toEqual([]);
    expect(d.events('placeholder_installed')).toEqual([]);
    expect(checkLive(p.certDir, ca.rootPem)).toEqual(before);
    // CRITICAL: besides the failed attempt, the live certificate (from the
    // real CA) does not chain to the root this configuration pins.
    expect(status.code).toBe(2);
    expect(JSON.parse(status.stdout).problems.join(' ')).toContain('did not answer JSON');
    expect(await d.stop()).toBe(0);
    record(task, {
      scenario: 'CA: broken, daemon',
      injected: 'daemon started against the garbage /roots CA',
      expected: 'logs the failure, keeps running and the certificate',
      observed: `renewal_failed (${failed!.errorKind}: ${String(failed!.error).slice(0, 80)}), next attempt ${failed!.nextAttempt}; live set unchanged, no placeholder; status exit ${status.code}; SIGTERM exit 0`,
    });
  });
});
