/**
 * A pass killed between two certificates' installs. Two certificates, each
 * with a consumer of its own (a reload command that appends to its own log),
 * both due, against a real step-ca through a relay (hostile-servers.ts) that
 * holds back the CA's answer to the SECOND certificate's new-order, so that
 * the second cannot get further than that whenever the kill lands. The pass
 * (`cert-agent renew` from the bundle) is SIGKILLed the moment it logs the
 * first certificate's `certificate_installed`: the first is installed, the
 * second's order begun at most, no consumer reloaded yet (reloads come after
 * every install) and no state file written.
 *
 * Each directory must then hold a whole set (key, cert and chain that belong
 * together and verify to the root, every published name through `current`):
 * the first the new one, the second the old one, nothing half-written. The
 * next pass renews the second and reloads both consumers: the second's for
 * its new set, the first's for the set it never took.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followLog, type LogLine } from '../harness/json-log.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { agentBundle, runAgent, selfCheckEnv, tempDir } from '../helpers/agent.js';
import { checkLive, leftovers, pairMatches, sleep } from './common.js';
import { startAcmeRelay, type AcmeRelay, type Intercept } from './hostile-servers.js';
import { record } from './table.js';

const HOLD_MS = 20_000;
let ca: StepCa;
let relay: AcmeRelay;
let intercept: Intercept = () => undefined;
const held: (() => void)[] = [];
let dir: string;
let config: string;
const NAMES = ['first', 'second'] as const;
const certDir = (name: string) => join(dir, 'certs', name);
const reloadLog = (name: string) => join(dir, `reload-${name}.log`);
const reloads = (name: string) => {
  try {
    return readFileSync(reloadLog(name), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

beforeAll(async () => {
  ca = await startStepCa({ certDuration: '1m' });
  relay = await startAcmeRelay(ca, (req, up) => intercept(req, up));
  dir = tempDir('cert-agent-multicrash-');
  config = join(dir, 'config.yaml');
  const entry = (name: string, domain: string) => ({
    name,
    domains: [domain],
    dir: certDir(name),
    // Each certificate's consumer: a command that notes the serial it was reloaded for.
    reload: {
      target: 'command',
      command: ['/bin/sh', '-c', `echo "$CERT_AGENT_SERIAL" >> ${reloadLog(name)}`],
    },
  });
  const doc = {
    ca: { url: relay.url, fingerprint: ca.rootFingerprint },
    certificates: [entry('first', 'localhost'), entry('second', '127.0.0.1')],
    challenge: { mode: 'standalone', listen: `127.0.0.1:${ca.acmeHttpPort}` },
    // Two-minute certificates (one plus step-ca's minute of backdating), due 12 s after issue.
    // ACME orders (renewal.method acme): the relay holds the second certificate's new-order.
    renewal: { at: 0.6, jitter: 0, method: 'acme' },
    stateDir: join(dir, 'state'),
  };
  writeFileSync(config, JSON.stringify(doc, null, 2), { mode: 0o600 });
});
afterAll(async () => {
  for (const release of held.splice(0)) release();
  await relay?.close();
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The new-order of `domain` answered only after HOLD_MS (or when released). */
function holdOrderOf(domain: string): { held: () => number } {
  let n = 0;
  intercept = (req, up) => {
    if (!req.path.endsWith('/new-order') || !up.body.includes(`"${domain}"`)) return undefined;
    n++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), HOLD_MS);
      held.push(() => (clearTimeout(timer), resolve(undefined)));
    });
  };
  return { held: () => n };
}

/** `renew` from the bundle, SIGKILLed as soon as it logs `certificate_installed` of `name`. */
function renewKilledAfterInstallOf(name: string): Promise<{ lines: LogLine[]; signal: string | null }> {
  const child = spawn(process.execPath, [agentBundle(), 'renew', '--config', config], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...selfCheckEnv(), CERT_AGENT_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: LogLine[] = [];
  followLog(child.stderr!, (line) => {
    lines.push(line);
    if (line.event === 'certificate_installed' && line.certificate === name) child.kill('SIGKILL');
  });
  return new Promise((resolve) => child.once('exit', (_code, signal) => resolve({ lines, signal })));
}

interface Whole {
  set: string;
  serial: string;
}

/** The set `current` leads to, whole: key, cert.pem and fullchain.pem belong together and verify to the root. */
function whole(name: string): Whole {
  const verdict = checkLive(certDir(name), ca.rootPem);
  expect(verdict, name).toMatchObject({ ok: true });
  const set = join(certDir(name), '.sets', verdict.set!);
  const cert = new X509Certificate(readFileSync(join(set, 'cert.pem')));
  expect(pairMatches(readFileSync(join(set, 'key.pem'), 'utf8'), cert), `${name}: cert.pem and key.pem`).toBe(true);
  expect(cert.serialNumber.toLowerCase()).toBe(verdict.serial);
  const left = leftovers(certDir(name));
  expect(left.tmp, `${name}: temp links`).toEqual([]);
  return { set: verdict.set!, serial: verdict.serial! };
}

const stateOf = (name: string) => readFileSync(join(dir, 'state', `state-${name}.json`), 'utf8');

describe('a pass killed between two certificates', () => {
  it('leaves each whole (the first new, the second old); the next pass completes the second and reloads both', async ({
    task,
  }) => {
    const first = await runAgent(['renew', '--config', config]);
    expect(first.code, first.stderr).toBe(0);
    const before = Object.fromEntries(NAMES.map((n) => [n, whole(n)]));
    const states = Object.fromEntries(NAMES.map((n) => [n, stateOf(n)]));
    expect(NAMES.map(reloads)).toEqual([[before.first!.serial], [before.second!.serial]]);

    // Both due (12 s after issue), then a pass whose second order the CA answers late.
    const dueAt = Math.max(...NAMES.map((n) => Date.parse(JSON.parse(states[n]!).nextRenewal as string)));
    await sleep(Math.max(0, dueAt - Date.now()) + 500);
    const hold = holdOrderOf('127.0.0.1');
    const started = Date.now();
    const killed = await renewKilledAfterInstallOf('first');
    const killedAfterMs = Date.now() - started;
    intercept = () => undefined;
    for (const release of held.splice(0)) release();
    expect(killed.signal).toBe('SIGKILL');
    // The kill may land before the second's new-order reaches the CA; if not, it is held there.
    expect(hold.held()).toBeLessThanOrEqual(1);
    const events = killed.lines.map((l) => `${l.event}:${String(l.certificate)}`);
    expect(events.filter((e) => e.startsWith('certificate_installed'))).toEqual(['certificate_installed:first']);

    const after = Object.fromEntries(NAMES.map((n) => [n, whole(n)]));
    expect(after.first!.set).not.toBe(before.first!.set);
    expect(after.first!.serial).not.toBe(before.first!.serial);
    expect(after.second).toEqual(before.second);
    // The killed pass reloaded nothing and recorded nothing.
    expect(NAMES.map(reloads)).toEqual([[before.first!.serial], [before.second!.serial]]);
    expect(NAMES.map(stateOf)).toEqual(NAMES.map((n) => states[n]));

    // The next pass: the second renewed, the first not due; each consumer reloaded onto its live set.
    const next = await runAgent(['renew', '--config', config], { env: { CERT_AGENT_LOG_LEVEL: 'info' } });
    expect(next.code, next.stderr).toBe(0);
    const nextEvents = next.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
    const named = (event: string) => nextEvents.filter((e) => e.event === event).map((e) => e.certificate);
    expect(named('certificate_installed')).toEqual(['second']);
    expect(named('renewal_not_due')).toEqual(['first']);
    const final = Object.fromEntries(NAMES.map((n) => [n, whole(n)]));
    expect(final.first).toEqual(after.first);
    expect(final.second!.serial).not.toBe(before.second!.serial);
    expect(reloads('second')).toEqual([before.second!.serial, final.second!.serial]);
    expect(reloads('first')).toEqual([before.first!.serial, final.first!.serial]);
    const status = await runAgent(['status', '--json', '--config', config]);
    expect(status.code, status.stdout).toBe(0);

    record(task, {
      scenario: 'several certificates: pass killed between installs',
      injected:
        "both due; the CA's answer to the second's new-order held back; SIGKILL at the first's certificate_installed",
      expected:
        'each set whole (first new, second old), nothing reloaded or recorded; next pass renews the second, reloads both',
      observed:
        `killed ${killedAfterMs} ms into the pass (second's order ${hold.held() ? 'held at new-order' : 'not yet at new-order'}); first ${before.first!.serial.slice(0, 8)}→${after.first!.serial.slice(0, 8)} whole, ` +
        `second still ${before.second!.serial.slice(0, 8)} whole, no reload, state files unchanged; next pass: second → ` +
        `${final.second!.serial.slice(0, 8)}, consumers reloaded: first ${reloads('first').length - 1}×, second ${reloads('second').length - 1}×; status OK`,
    });
  }, 90_000);
});
