/**
 * One certificate's names refused by the CA's policy while the other renews
 * on schedule. A real step-ca whose issuance policy allows `localhost` and
 * `*.allowed.internal` only (ca.json `authority.policy`, see
 * test/harness/stepca.ts), issuing two-minute certificates (one minute plus
 * its minute of backdating), and an agent with two certificates: `denied`
 * (first in the list, for `denied.internal`) and `app` (`localhost`, due at
 * 0.55 of its lifetime, 6 s after each issue). Timer mode as
 * cert-agent.timer runs it: `cert-agent check` from the bundle, one process
 * a second, for half a minute of real time.
 *
 * `denied` must fail with the CA's own refusal, back off (state-denied.json:
 * nextAttempt, consecutiveFailures growing; a check before nextAttempt says
 * check_deferred for it and touches neither its state nor its directory) and
 * be the only one that is not OK in `status` (its own entry in --json and
 * --line; the overall status the worst) and in the metrics
 * (cert_agent_certificate_status per certificate). `app` meanwhile renews
 * whenever it is due, in the same passes that fail or defer `denied`.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { snapshot, sleep } from './common.js';
import { record } from './table.js';

const LOOP_MS = 30_000;
let ca: StepCa;
let dir: string;
let config: string;
const certDir = (name: string) => join(dir, 'certs', name);
const stateFile = (name: string) => join(dir, 'state', `state-${name}.json`);

beforeAll(async () => {
  ca = await startStepCa({
    certDuration: '1m',
    policy: { x509: { allow: { dns: ['localhost', '*.allowed.internal'] } } },
  });
  dir = tempDir('cert-agent-policy-');
  config = join(dir, 'config.yaml');
  const doc = {
    ca: { url: ca.url, fingerprint: ca.rootFingerprint },
    certificates: [
      { name: 'denied', domains: ['denied.internal'], dir: certDir('denied') },
      { name: 'app', domains: ['localhost'], dir: certDir('app') },
    ],
    challenge: { mode: 'standalone', listen: `127.0.0.1:${ca.acmeHttpPort}` },
    renewal: { at: 0.55, jitter: 0 },
    stateDir: join(dir, 'state'),
  };
  writeFileSync(config, JSON.stringify(doc, null, 2), { mode: 0o600 });
});
afterAll(async () => {
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Event = Record<string, unknown> & { event: string; certificate?: string };
interface Run {
  startedAt: number;
  events: Event[];
  /** state-denied.json before the run (bytes), and parsed. */
  deniedBefore: string;
  deniedAfter: string;
  deniedDirChanged: boolean;
}

const read = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

async function check(): Promise<Run> {
  const deniedBefore = read(stateFile('denied'));
  const dirBefore = deniedBefore ? snapshot(certDir('denied')).join('\n') : '';
  const startedAt = Date.now();
  const r = await runAgent(['check', '--config', config], { env: { CERT_AGENT_LOG_LEVEL: 'info' } });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  const events = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Event);
  const deniedAfter = read(stateFile('denied'));
  return {
    startedAt,
    events,
    deniedBefore,
    deniedAfter,
    deniedDirChanged: Boolean(dirBefore) && snapshot(certDir('denied')).join('\n') !== dirBefore,
  };
}

const of = (run: Run, event: string, name: string) =>
  run.events.filter((e) => e.event === event && e.certificate === name);

describe('a certificate refused by the CA policy beside one that renews', () => {
  it('the refused one backs off alone and shows alone; the other renews on schedule', async ({ task }) => {
    const runs: Run[] = [];
    const end = Date.now() + LOOP_MS;
    while (Date.now() < end) {
      runs.push(await check());
      await sleep(700);
    }

    // denied: refused with the CA's words, every attempt; its failures counted in state.
    const failures = runs.flatMap((r) => of(r, 'renewal_failed', 'denied'));
    expect(failures.length).toBeGreaterThanOrEqual(3);
    // step-ca's problem document names no identifier (its log does); the event names the domains.
    for (const f of failures) {
      expect(f.error).toBe(
        'ACME new order failed: The server will not issue certificates for the identifier (rejectedIdentifier)',
      );
      expect(f.domains).toEqual(['denied.internal']);
    }
    expect(failures.map((f) => f.attempt)).toEqual(failures.map((_, i) => i + 1));
    const delays = failures.map((f) => Date.parse(String(f.nextAttempt)) - Date.parse(String(f.time)));
    expect(delays[delays.length - 1]!).toBeGreaterThan(delays[0]!);
    const finalState = JSON.parse(readFileSync(stateFile('denied'), 'utf8')) as Record<string, unknown>;
    expect(finalState.consecutiveFailures).toBe(failures.length);

    // A run before denied's nextAttempt: check_deferred for it, its state and directory untouched.
    let deferred = 0;
    for (const r of runs) {
      if (!r.deniedBefore) continue;
      const next = Date.parse(String((JSON.parse(r.deniedBefore) as { nextAttempt?: string }).nextAttempt));
      if (!(r.startedAt < next - 200)) continue; // a run at the very edge may go either way
      deferred++;
      expect(of(r, 'check_deferred', 'denied'), JSON.stringify(r.events)).toHaveLength(1);
      expect(of(r, 'renewal_started', 'denied')).toEqual([]);
      expect(of(r, 'renewal_failed', 'denied')).toEqual([]);
      expect(r.deniedAfter).toBe(r.deniedBefore);
      expect(r.deniedDirChanged).toBe(false);
    }
    expect(deferred).toBeGreaterThanOrEqual(3);

    // app: installed at first, then renewed whenever due, within a check period (plus a start and an order).
    const installs = runs.flatMap((r) => of(r, 'certificate_installed', 'app'));
    expect(installs.length).toBeGreaterThanOrEqual(3);
    const lateness = installs.slice(1).map((e, i) => {
      const due = Date.parse(String(installs[i]!.nextRenewal));
      return Date.parse(String(e.time)) - due;
    });
    for (const late of lateness) expect(late).toBeLessThan(5_000);
    expect(runs.flatMap((r) => of(r, 'renewal_failed', 'app'))).toEqual([]);
    // Renewed in passes where denied was deferred, and in passes where it failed.
    const renewedBeside = (event: string) =>
      runs.filter((r) => of(r, 'certificate_installed', 'app').length && of(r, event, 'denied').length).length;
    expect(renewedBeside('check_deferred') + renewedBeside('renewal_failed')).toBe(installs.length);
    expect(renewedBeside('check_deferred')).toBeGreaterThanOrEqual(1);

    // status: denied alone not OK, the whole the worst; one line each.
    const json = await runAgent(['status', '--json', '--config', config]);
    const report = JSON.parse(json.stdout) as {
      status: string;
      certificates: { name: string; status: string; problems: string[]; renewal: Record<string, unknown> }[];
    };
    const byName = Object.fromEntries(report.certificates.map((c) => [c.name, c]));
    expect(byName.app!.status).toBe('OK');
    expect(['CRITICAL', 'WARNING']).toContain(byName.denied!.status);
    expect(byName.denied!.renewal.consecutiveFailures).toBe(failures.length);
    expect(report.status).toBe(byName.denied!.status);
    expect(json.code).toBe(byName.denied!.status === 'CRITICAL' ? 2 : 1);
    const one = await runAgent(['status', '--name', 'app', '--config', config]);
    expect(one.code, one.stdout).toBe(0);

    const lines = (await runAgent(['status', '--line', '--config', config])).stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    const fields = lines.map((l) => l.split('\t'));
    expect(fields.map((f) => [f[0], f[1], f[7]])).toEqual([
      ['v2', byName.denied!.status, 'denied'],
      ['v2', 'OK', 'app'],
    ]);

    // metrics: cert_agent_certificate_status per certificate, cert_agent_status the worst.
    const metrics = await runAgent(['metrics', '--config', config]);
    type Family = { name: string; metrics: { value: string; labels?: Record<string, string> }[] };
    const families = parsePrometheusTextFormat(metrics.stdout) as Family[];
    const family = (n: string) => families.find((f) => f.name === n)!.metrics;
    const perCert = Object.fromEntries(
      family('cert_agent_certificate_status').map((m) => [m.labels!.certificate, m.value]),
    );
    expect(perCert).toEqual({ app: '0', denied: byName.denied!.status === 'CRITICAL' ? '2' : '1' });
    expect(family('cert_agent_status')[0]!.value).toBe(perCert.denied);

    record(task, {
      scenario: 'several certificates: one refused by CA policy',
      injected: `step-ca policy allows localhost and *.allowed.internal; "denied" asks for denied.internal; ${runs.length} timer-mode checks over ${LOOP_MS / 1000} s`,
      expected:
        'denied fails with the CA error and backs off alone; app renews on schedule; status/metrics per certificate',
      observed:
        `denied: ${failures.length} refusals ("${String(failures[0]!.error).slice(0, 90)}"), retry delays ${delays.map((d) => (d / 1000).toFixed(1)).join(', ')} s, ` +
        `${deferred} checks deferred it untouched; app: ${installs.length} installs, each ${lateness.map((l) => (l / 1000).toFixed(1)).join(', ')} s after due; ` +
        `status ${report.status} (app OK, denied ${byName.denied!.status}: ${byName.denied!.problems[0]?.slice(0, 60)})`,
    });
  }, 90_000);
});
