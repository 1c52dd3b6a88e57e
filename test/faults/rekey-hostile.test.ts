/**
 * Renewal over step-ca's API (`POST /1.0/rekey`, mutual TLS) against a CA
 * that answers it badly: garbage, something that is not JSON, JSON without a
 * certificate, a chain from another CA, a certificate for other names or for
 * another key, step-ca's JSON errors (401, 403, 404, 500), and a TLS alert
 * about the client certificate. The CA is the in-process fake
 * (test/harness/fake-acme.ts, issuing serverAuth + clientAuth leaves as
 * step-ca does) with its rekey route overridden; the agent is the bundle, as
 * a process. Each answer must be refused with nothing of it installed: with
 * `renewal.method: auto` the same pass falls back to an ACME order and
 * succeeds, logging `renewal_fallback` with the reason; with `step` the pass
 * fails with one line and exit code 76 and the live set stays byte for byte.
 */
import { cpSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeAcme, problem, type FakeRequest, type Handler, type Reply } from '../harness/fake-acme.js';
import { signResponse, startAlertingApi, stepCaError } from '../harness/fake-stepca-api.js';
import { freePort } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { makeCa, newKey, writeSetByHand, type TestCa } from '../helpers/certs.js';
import { lastRenewalOf, livePublicKey, renewalOf } from '../helpers/renewal-method.js';
import { agentPaths, checkLive, plainLines, snapshot, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

const DOMAINS = ['app.internal', 'www.app.internal'];
let fake: FakeAcme;
let other: TestCa;
let rootFile: string;
let listen: number;
let base: AgentPaths;
const cleanups: (() => unknown)[] = [];
/** The events read here are logged at info. */
const INFO = { env: { CERT_AGENT_LOG_LEVEL: 'info' } };

/**
 * An agent configured for the fake: the pin from a file, `renewal.method` as
 * given (with its shortest orderTimeout, which also bounds one API request),
 * `caUrl` for the API if not the fake.
 */
function configure(p: AgentPaths, method: string, caUrl = fake.origin): void {
  writeConfig(p, { url: caUrl, rootFingerprint: fake.ca.fingerprint }, listen, {
    ca: { directory: fake.directoryUrl, rootFile },
    certificate: { domains: DOMAINS },
    renewal: { method, orderTimeout: 10 },
  });
}

beforeAll(async () => {
  const ca = await makeCa('Fake step-ca');
  fake = await FakeAcme.start(ca, { clientAuth: true });
  other = await makeCa('Other');
  const dir = tempDir('cert-agent-rekey-root-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  rootFile = join(dir, 'root.pem');
  writeFileSync(rootFile, fake.ca.root.pem);
  listen = await freePort();
  base = agentPaths('cert-agent-rekey-base-');
  configure(base, 'auto');
  // The first certificate, by ACME whatever the method.
  const first = await runAgent(['renew', '--config', base.config], INFO);
  expect(first.code, first.stderr).toBe(0);
  expect(renewalOf(first.stderr).installedBy).toEqual(['acme']);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await fake?.close();
  if (base) rmSync(base.dir, { recursive: true, force: true });
});

/** Another container with the base's live set, state (pin, account) and `method`. */
function container(method: string, caUrl?: string): AgentPaths {
  const p = agentPaths('cert-agent-rekey-');
  cleanups.push(() => rmSync(p.dir, { recursive: true, force: true }));
  cpSync(base.certDir, p.certDir, { recursive: true, verbatimSymlinks: true });
  cpSync(base.stateDir, p.stateDir, { recursive: true });
  configure(p, method, caUrl);
  return p;
}

/** `renew --force` in a fresh container, with what the CA saw and what changed. */
async function forced(method: string, caUrl?: string) {
  const p = container(method, caUrl);
  const before = snapshot(p.certDir);
  const key = livePublicKey(p.certDir);
  const seen = { orders: fake.count('newOrder'), rekeys: fake.count('rekey') };
  const r = await runAgent(['renew', '--force', '--config', p.config], INFO);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  const live = checkLive(p.certDir, fake.ca.root.pem);
  expect(live.ok, live.problem).toBe(true);
  return {
    p,
    r,
    renewal: renewalOf(r.stderr),
    lines: plainLines(r.stderr),
    untouched: snapshot(p.certDir).join('\n') === before.join('\n'),
    newKey: livePublicKey(p.certDir) !== key,
    serial: live.serial!,
    orders: fake.count('newOrder') - seen.orders,
    rekeys: fake.count('rekey') - seen.rekeys,
  };
}

/** The public key of the CSR a rekey request carries. */
async function csrKey(req: FakeRequest): Promise<CryptoKey> {
  const { csr } = JSON.parse(req.body ?? '') as { csr: string };
  return new x509.Pkcs10CertificateRequest(csr).publicKey.export();
}

/** Serials of the certificates the hostile answers carried: none may end up live. */
const hostileSerials = new Set<string>();
async function answer(leaf: { pem: string; serial: string }, chain: string[]): Promise<Reply> {
  hostileSerials.add(leaf.serial);
  return signResponse([leaf.pem, ...chain]);
}

interface Case {
  scenario: string;
  injected: string;
  handler?: Handler;
  /** What the fallback's reason must say: refused for this, not for something else. */
  reason: RegExp;
  /** The API answered by a TLS server that refuses the client certificate with an alert. */
  alert?: true;
}

const json = (status: number, body: unknown): Reply => ({ status, body });
const CASES: Case[] = [
  {
    scenario: 'garbage',
    injected: '201 with random bytes',
    reason: /no certificate chain/,
    handler: () => ({ status: 201, body: randomBytes() }),
  },
  {
    scenario: 'not JSON',
    injected: '201 text/html',
    reason: /no certificate chain/,
    handler: () => ({ status: 201, headers: { 'content-type': 'text/html' }, body: '<html>renewed!</html>' }),
  },
  {
    scenario: 'no certificate',
    injected: '201 JSON without crt',
    reason: /no certificate chain/,
    handler: () => json(201, { ca: '', certChain: [] }),
  },
  {
    scenario: 'wrong chain',
    injected: 'the CSR key and names, issued by another CA',
    reason: /pinned root/,
    handler: async (req) => {
      const leaf = await other.leaf({ domains: DOMAINS, publicKey: await csrKey(req), usages: 'server+client' });
      return answer(leaf, [other.intermediate.pem]);
    },
  },
  {
    scenario: 'other names',
    injected: 'the CSR key, names other.internal',
    reason: /names/,
    handler: async (req) => {
      const leaf = await fake.ca.leaf({
        domains: ['other.internal'],
        publicKey: await csrKey(req),
        usages: 'server+client',
      });
      return answer(leaf, [fake.ca.intermediate.pem]);
    },
  },
  {
    scenario: 'extra names',
    injected: 'the CSR key, the configured names and evil.example',
    reason: /names that are not configured \(evil\.example\)/,
    handler: async (req) => {
      const leaf = await fake.ca.leaf({
        domains: [...DOMAINS, 'evil.example'],
        publicKey: await csrKey(req),
        usages: 'server+client',
      });
      return answer(leaf, [fake.ca.intermediate.pem]);
    },
  },
  {
    scenario: 'another key',
    injected: 'the right names, a key other than the CSR',
    reason: /private key/,
    handler: async () => {
      const leaf = await fake.ca.leaf({ domains: DOMAINS, key: await newKey(), usages: 'server+client' });
      return answer(leaf, [fake.ca.intermediate.pem]);
    },
  },
  ...[401, 403, 404, 500].map((status) => ({
    scenario: `HTTP ${status}`,
    injected: `${status} with step-ca's JSON error`,
    reason: new RegExp(`HTTP ${status}: The`),
    handler: () => stepCaError(status),
  })),
  {
    scenario: 'TLS alert',
    injected: 'handshake aborted: alert unknown_ca on the client certificate',
    reason: /TLS client certificate.*ALERT_UNKNOWN_CA/,
    alert: true,
  },
];

function randomBytes(): Buffer {
  return Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919 + 13) % 256));
}

describe('renewal over the CA API, a well-behaved CA (the control)', () => {
  it('auto: renewed by /1.0/rekey with a new key, no ACME order, recorded as step', async () => {
    for (const method of ['auto', 'step']) {
      const o = await forced(method);
      expect(o.r.code, o.r.stderr).toBe(0);
      expect(o.renewal.installedBy).toEqual(['step']);
      expect(o.renewal.fallbacks).toEqual([]);
      expect(o).toMatchObject({ orders: 0, rekeys: 1, newKey: true });
      expect(lastRenewalOf(o.p.stateDir)).toMatchObject({ method: 'step' });
    }
  });
});

describe('renewal over the CA API, hostile or broken answers', () => {
  for (const c of CASES) {
    it(`${c.scenario}: refused; auto falls back to ACME in the same pass, step fails with 76 and keeps the certificate`, async ({
      task,
    }) => {
      let caUrl: string | undefined;
      if (c.alert) {
        const api = await startAlertingApi(fake.ca);
        cleanups.push(() => api.close());
        caUrl = api.url;
      }
      fake.handle('rekey', c.handler ?? ((_req, next) => next()));
      try {
        const auto = await forced('auto', caUrl);
        expect(auto.r.code, auto.r.stderr).toBe(0);
        expect(auto.renewal.installedBy).toEqual(['acme']);
        expect(auto.renewal.fallbacks).toHaveLength(1);
        expect(auto.renewal.fallbacks[0]).toMatch(c.reason);
        expect(auto.orders).toBe(1);
        if (!c.alert) expect(auto.rekeys).toBe(1);
        expect(hostileSerials.has(auto.serial)).toBe(false);
        expect(lastRenewalOf(auto.p.stateDir)).toMatchObject({ method: 'acme', fallback: auto.renewal.fallbacks[0] });

        const step = await forced('step', caUrl);
        expect(step.r.code, step.r.stderr).toBe(76);
        expect(step.lines, step.r.stderr).toHaveLength(1);
        expect(step.lines[0]).toMatch(/renewal\.method is step/);
        expect(step.lines[0]).toMatch(/current certificate is kept/);
        expect(step.lines[0]).toMatch(c.reason);
        expect(step).toMatchObject({ untouched: true, orders: 0 });
        record(task, {
          scenario: `CA API: ${c.scenario}`,
          injected: c.injected,
          expected:
            'refused, nothing of it installed; auto: ACME in the same pass; step: exit 76, one line, set untouched',
          observed: `auto: exit ${auto.r.code}, installed by ${String(auto.renewal.installedBy)}, fallback "${auto.renewal.fallbacks[0]?.slice(0, 100)}"; step: exit ${step.r.code}, "${step.lines[0]?.slice(0, 120)}", set ${step.untouched ? 'untouched' : 'CHANGED'}`,
        });
      } finally {
        fake.handle('rekey', (_req, next) => next());
      }
    });
  }
});

describe('renewal over the CA API, failures that are not refusals: no fallback (ACME would meet the same CA)', () => {
  const cases: { scenario: string; code: number; line: RegExp; api: () => Promise<string | undefined> }[] = [
    {
      scenario: 'the API server presents a TLS certificate from another root',
      code: 65,
      line: /does not verify against the pinned CA root/,
      api: async () => {
        const api = await startAlertingApi(other);
        cleanups.push(() => api.close());
        return api.url;
      },
    },
    {
      scenario: 'the API accepts the request and never answers',
      code: 69,
      line: /did not answer|cannot reach|timed out/,
      api: () => {
        fake.handle('rekey', () => new Promise<Reply>(() => undefined));
        return Promise.resolve(undefined);
      },
    },
  ];
  for (const c of cases) {
    it(`${c.scenario}: auto and step both fail, no ACME order, the set untouched`, async ({ task }) => {
      const caUrl = await c.api();
      try {
        const seen: string[] = [];
        for (const method of ['auto', 'step']) {
          const o = await forced(method, caUrl);
          expect(o.r.code, o.r.stderr).toBe(c.code);
          expect(o.lines, o.r.stderr).toHaveLength(1);
          expect(o.lines[0]).toMatch(c.line);
          expect(o.renewal.fallbacks).toEqual([]);
          expect(o).toMatchObject({ untouched: true, orders: 0 });
          seen.push(`${method}: exit ${o.r.code}, "${o.lines[0]?.slice(0, 100)}"`);
        }
        record(task, {
          scenario: `CA API: ${c.scenario}`,
          injected: c.scenario,
          expected: `exit ${c.code} in auto and step, no fallback to ACME, set untouched`,
          observed: seen.join('; '),
        });
      } finally {
        fake.handle('rekey', (_req, next) => next());
      }
    }, 60_000);
  }
});

describe('renewal over the CA API, what a fallback and a refusal leave behind', () => {
  it('the API refuses and the ACME order fails too: the error says why it was an order', async () => {
    fake.handle('rekey', () => stepCaError(401));
    fake.handle('finalize', () => problem(403, 'unauthorized', 'no more certificates today'));
    try {
      const o = await forced('auto');
      expect(o.r.code).toBe(76);
      expect(o.lines, o.r.stderr).toHaveLength(1);
      expect(o.lines[0]).toMatch(
        /no more certificates today.*an ACME order because the CA's renewal API could not renew: .*HTTP 401/,
      );
      expect(o.untouched).toBe(true);
      const state = JSON.parse(readFileSync(join(o.p.stateDir, 'state.json'), 'utf8')) as {
        lastAttempt: { error: string };
      };
      expect(state.lastAttempt.error).toMatch(/renewal API could not renew: .*HTTP 401/);
    } finally {
      fake.handle('rekey', (_req, next) => next());
      fake.handle('finalize', (_req, next) => next());
    }
  });

  it('the API origin is not reached while the ACME directory lives elsewhere: auto orders over ACME', async () => {
    const dead = `https://127.0.0.1:${await freePort()}`;
    const auto = await forced('auto', dead);
    expect(auto.r.code, auto.r.stderr).toBe(0);
    expect(auto.renewal.installedBy).toEqual(['acme']);
    expect(auto.renewal.fallbacks[0]).toMatch(/cannot reach/);
  });

  it('step and an expired certificate: a scheduled check fails (renewal-refused) and leaves the expired set, no placeholder', async () => {
    const p = container('step');
    const key = await newKey();
    const now = Date.now();
    const leaf = await fake.ca.leaf({
      domains: DOMAINS,
      key,
      usages: 'server+client',
      notBefore: new Date(now - 3 * 3600_000),
      notAfter: new Date(now - 3600_000),
    });
    writeSetByHand(p.certDir, 'expired-by-hand', {
      keyPem: key.pem,
      fullchainPem: leaf.fullchainPem,
      rootPem: fake.ca.root.pem,
    });
    const before = readFileSync(join(p.certDir, 'cert.pem'), 'utf8');
    const orders = fake.count('newOrder');
    // Timer mode's check exits 0 whatever the pass did; the failure is in its log and the state file.
    const r = await runAgent(['check', '--config', p.config], INFO);
    expect(r.code, r.stderr).toBe(0);
    const failed = r.stdout + r.stderr;
    expect(failed).toMatch(/renewal\.method is step and the CA's renewal API cannot renew it: certificate \S+ expired/);
    expect(failed).not.toMatch(/placeholder_installed/);
    const state = JSON.parse(readFileSync(join(p.stateDir, 'state.json'), 'utf8')) as {
      lastAttempt: { result: string; errorKind: string };
      placeholder: boolean;
    };
    expect(state.lastAttempt).toMatchObject({ result: 'failed', errorKind: 'renewal-refused' });
    expect(state.placeholder).toBe(false);
    // The expired set stays live (the upkeep may prune older sets the hand-made one left behind).
    expect(readlinkSync(join(p.certDir, 'current'))).toBe(join('.sets', 'expired-by-hand'));
    expect(readFileSync(join(p.certDir, 'cert.pem'), 'utf8')).toBe(before);
    expect(fake.count('newOrder')).toBe(orders);
  });
});
