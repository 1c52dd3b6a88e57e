/**
 * The dns-01 solver whole, in the test process: the operator's command is a
 * real shell script standing in for a DNS provider (it appends each call to a
 * file, with whether the record was already noted in the state directory),
 * and an authoritative server of this test (test/helpers/fake-dns.ts) answers
 * the TXT records that provider holds. Checked: a record is noted before the
 * command runs and forgotten after it is withdrawn; a present that fails is
 * withdrawn at once; opening the solver withdraws what this certificate's
 * earlier passes left, and only that, going past a withdrawal that fails.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dnsSolver } from '../../../agent/challenge/dns.js';
import { recordName, txtValue } from '../../../agent/challenge/dns-settings.js';
import type { Challenge, ChallengeSettings, SolverContext } from '../../../agent/challenge/types.js';
import { ChallengeError } from '../../../agent/lib/errors.js';
import type { Logger } from '../../../agent/lib/log.js';
import { notePublished, publishedRecords, type PublishedRecord } from '../../../agent/store/dns-records.js';
import { tempDir } from '../../helpers/agent.js';
import { startFakeDns, type FakeDns, type FakeZone } from '../../helpers/fake-dns.js';

const ZONE = 'solver.test';
const zone: FakeZone = { zone: ZONE, ns: { [`ns1.${ZONE}`]: '127.0.0.1' } };
let dns: FakeDns;
let dir: string;
let stateDir: string;
let calls: string;
let hook: string;
let warnings: object[];

/** The provider: `present|cleanup NAME VALUE` appended to calls.log with "noted" or "unnoted"; fail-ACTION makes it fail. */
const script = (d: string, state: string) => `#!/bin/sh
if grep -q -- "$3" ${state}/dns-records.json 2>/dev/null; then noted=noted; else noted=unnoted; fi
echo "$1 $2 $3 $noted" >> ${d}/calls.log
if [ -f ${d}/fail-$1 ]; then echo "provider: $1 refused" >&2; exit 2; fi
`;

/** What the provider holds now: each present not cleaned up since (a failed call changes nothing). */
function providerHolds(): Map<string, string[]> {
  const held = new Map<string, string[]>();
  for (const line of callLines()) {
    const [action, name = '', value = ''] = line.split(' ');
    if (existsSync(join(dir, `fail-${action}`))) continue;
    const values = held.get(name) ?? [];
    held.set(name, action === 'present' ? [...values, value] : values.filter((v) => v !== value));
  }
  return held;
}

const callLines = () => (existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').filter(Boolean) : []);

beforeAll(async () => {
  dns = await startFakeDns(zone);
  dns.onTxt = (name) => ({ texts: (providerHolds().get(name) ?? []).map((v) => [v]) });
});
afterAll(() => dns.close());

beforeEach(() => {
  dir = tempDir('cert-agent-dns-solver-');
  stateDir = join(dir, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  calls = join(dir, 'calls.log');
  hook = join(dir, 'hook.sh');
  writeFileSync(hook, script(dir, stateDir), { mode: 0o755 });
  warnings = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const settings = (propagationTimeoutSeconds = 5): ChallengeSettings => ({
  mode: 'dns',
  listen: '',
  webroot: '',
  dns: {
    command: [hook],
    server: { host: dns.host, port: dns.port },
    propagationTimeoutSeconds,
    ttl: 60,
  },
});

const logger = (): Logger => {
  const none = () => undefined;
  return { debug: none, info: none, error: none, fatal: none, warn: (fields) => warnings.push(fields) };
};

const context = (certificate = 'app'): SolverContext => ({
  selfCheckPort: 80,
  names: [`app.${ZONE}`],
  certificate,
  stateDir,
  commandTimeoutSeconds: 5,
  log: logger(),
});

const challenge = (name: string, token = 'tok1'): Challenge => ({
  type: 'dns-01',
  identifier: { type: 'dns', value: name },
  token,
  keyAuthorization: `${token}.thumbprint`,
});

const left = (certificate: string, n: number, via: PublishedRecord['via'] = 'command'): PublishedRecord => ({
  certificate,
  name: `_acme-challenge.host${n}.${ZONE}`,
  value: `leftover-${certificate}-${n}`,
  via,
  at: '2026-12-07T21:00:00.000Z',
});

describe('present and cleanup through the command', () => {
  it('the record is noted before the command runs, awaited on the server, withdrawn and forgotten', async () => {
    const solver = await dnsSolver.open(settings(), context());
    const c = challenge(`*.App.${ZONE}`);
    const name = recordName(c.identifier.value);
    const value = txtValue(c.keyAuthorization);
    await solver.present(c);
    expect(callLines()).toEqual([`present ${name} ${value} noted`]);
    expect(dns.txtQueries.filter((q) => q === name).length).toBeGreaterThan(0);
    expect(publishedRecords(stateDir)).toMatchObject([{ certificate: 'app', name, value, via: 'command' }]);
    // Every authoritative server has it, so the self-check points at the CA's resolver.
    expect(await solver.selfCheck?.(c)).toMatch(/answers the record .* step-ca's --resolver/);
    await solver.cleanup(c);
    expect(callLines()).toEqual([`present ${name} ${value} noted`, `cleanup ${name} ${value} noted`]);
    expect(publishedRecords(stateDir)).toEqual([]);
    expect(existsSync(join(stateDir, 'dns-records.json'))).toBe(false);
    await solver.close();
  });

  it('a present whose command fails: the cleanup command is called at once and the note removed', async () => {
    writeFileSync(join(dir, 'fail-present'), '');
    const solver = await dnsSolver.open(settings(), context());
    const c = challenge(`app.${ZONE}`);
    const err = await solver.present(c).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChallengeError);
    expect((err as Error).message).toMatch(
      /present _acme-challenge\.app\.solver\.test exited 2; output: provider: present refused$/,
    );
    const value = txtValue(c.keyAuthorization);
    expect(callLines()).toEqual([
      `present _acme-challenge.app.${ZONE} ${value} noted`,
      `cleanup _acme-challenge.app.${ZONE} ${value} noted`,
    ]);
    expect(publishedRecords(stateDir)).toEqual([]);
    // The order calls cleanup for it too: nothing more is sent.
    await solver.cleanup(c);
    expect(callLines()).toHaveLength(2);
  });

  it('a failed present whose cleanup fails too: the note stays for the next pass, a warning logged', async () => {
    writeFileSync(join(dir, 'fail-present'), '');
    writeFileSync(join(dir, 'fail-cleanup'), '');
    const solver = await dnsSolver.open(settings(), context());
    await expect(solver.present(challenge(`app.${ZONE}`))).rejects.toThrow(ChallengeError);
    expect(publishedRecords(stateDir)).toHaveLength(1);
    expect(warnings).toMatchObject([{ event: 'dns_record_cleanup_failed', certificate: 'app' }]);
  });

  it('a record the servers never answer: the wait runs out, the record is withdrawn at once', async () => {
    const solver = await dnsSolver.open(settings(1), context());
    dns.onTxt = () => ({ texts: [['something else']] });
    try {
      const err = await solver.present(challenge(`app.${ZONE}`)).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/did not reach every authoritative server of solver\.test within 1s/);
      expect(callLines().map((l) => l.split(' ')[0])).toEqual(['present', 'cleanup']);
      expect(publishedRecords(stateDir)).toEqual([]);
    } finally {
      dns.onTxt = (name) => ({ texts: (providerHolds().get(name) ?? []).map((v) => [v]) });
    }
  });

  it('an IP address: refused before anything is noted or run', async () => {
    const solver = await dnsSolver.open(settings(), context());
    const c: Challenge = { ...challenge('192.0.2.1'), identifier: { type: 'ip', value: '192.0.2.1' } };
    await expect(solver.present(c)).rejects.toThrow(/dns-01 proves DNS names only; 192\.0\.2\.1 is an IP address/);
    expect(callLines()).toEqual([]);
    expect(existsSync(join(stateDir, 'dns-records.json'))).toBe(false);
  });
});

describe('open() withdraws what an earlier pass left', () => {
  it("this certificate's command records only: another certificate's, and its own RFC 2136 ones, stay noted", async () => {
    const mine = [left('app', 1), left('app', 2)];
    const others = [left('grafana', 3), left('app', 4, 'rfc2136')];
    for (const r of [mine[0], others[0], mine[1], others[1]] as PublishedRecord[]) notePublished(stateDir, r);
    await dnsSolver.open(settings(), context('app'));
    expect(callLines()).toEqual(mine.map((r) => `cleanup ${r.name} ${r.value} noted`));
    expect(publishedRecords(stateDir)).toEqual(others);
  });

  it('a withdrawal that fails does not stop the sweep: each is tried, all stay noted, the open still succeeds', async () => {
    const mine = [left('app', 1), left('app', 2), left('app', 3)];
    for (const r of mine) notePublished(stateDir, r);
    writeFileSync(join(dir, 'fail-cleanup'), '');
    const solver = await dnsSolver.open(settings(), context('app'));
    expect(callLines()).toEqual(mine.map((r) => `cleanup ${r.name} ${r.value} noted`));
    expect(publishedRecords(stateDir)).toEqual(mine);
    expect(warnings).toMatchObject(mine.map((r) => ({ event: 'dns_record_cleanup_failed', record: r.name })));
    await solver.close();
  });

  it("a name the CA asks for that is not the certificate's: refused, nothing published", async () => {
    const solver = await dnsSolver.open(settings(), context('app'));
    const err = await solver.present(challenge(`evil.${ZONE}`)).catch((e: unknown) => e);
    expect(String(err)).toMatch(/not one of this certificate's names/);
    expect(callLines()).toEqual([]);
    expect(publishedRecords(stateDir)).toEqual([]);
    await solver.close();
  });
});
