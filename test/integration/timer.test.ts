/**
 * Timer mode: `cert-agent check` (one check of the daemon per process, as
 * cert-agent.timer starts it) run again and again against a real step-ca
 * issuing two-minute certificates. Renewals happen across runs at the
 * scheduled share of the lifetime; after a failure, runs before the recorded
 * retry time do nothing and do not even connect to the CA; the placeholder
 * is served on a first start with the CA down; the metrics textfile follows
 * every pass.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../agent/config/config.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { enrollAgent } from '../helpers/enrolled.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Setup {
  ca: StepCa;
  dir: string;
  config: string;
  certDir: string;
  stateDir: string;
}

async function setup(opts: { at?: number; jitter?: number; caDown?: boolean; extra?: string } = {}): Promise<Setup> {
  const ca = await startStepCa({ certDuration: '1m' });
  const dir = tempDir();
  cleanups.push(
    () => ca.cleanup(),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  const config = join(dir, 'config.yaml');
  const certDir = join(dir, 'tls');
  const stateDir = join(dir, 'state');
  if (opts.caDown) await ca.stop();
  await enrollAgent(ca, dir, { extra: opts.caDown ? ['--allow-unreachable'] : [] });
  writeFileSync(
    config,
    readFileSync(config, 'utf8') +
      `renewal:\n  at: ${opts.at ?? 0.6}\n  jitter: ${opts.jitter ?? 0.05}\n` +
      (opts.extra ?? ''),
  );
  return { ca, dir, config, certDir, stateDir };
}

interface Run {
  startedAt: number;
  endedAt: number;
  code: number;
  events: Record<string, unknown>[];
}

/** One timer-mode run: its exit code and the JSON log lines it wrote on stdout. */
async function check(s: Setup): Promise<Run> {
  const startedAt = Date.now();
  const r = await runAgent(['check', '--config', s.config], { env: { CERT_AGENT_LOG_LEVEL: 'info' } });
  const events = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(r.stderr).toBe('');
  return { startedAt, endedAt: Date.now(), code: r.code, events };
}

const has = (run: Run, event: string) => run.events.filter((e) => e.event === event);
const liveCert = (s: Setup) => new X509Certificate(readFileSync(join(s.certDir, 'cert.pem')));
const state = (s: Setup) => JSON.parse(readFileSync(join(s.stateDir, 'state.json'), 'utf8')) as Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stands on the CA's port while step-ca is stopped and counts every connection made to it. */
async function connectionCounter(port: number): Promise<{ count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server: Server = createServer((socket) => {
    n++;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  return { count: () => n, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe.concurrent('cert-agent check (timer mode)', () => {
  it('renews at the scheduled share of the lifetime across repeated one-shot runs', async () => {
    const s = await setup();
    const first = await check(s);
    expect(first.code).toBe(0);
    expect(has(first, 'certificate_installed')).toHaveLength(1);
    const installs: Record<string, unknown>[] = [...has(first, 'certificate_installed')];
    let notDue = 0;
    const deadline = Date.now() + 150_000;
    // A timer every 2 s: the renewal moment is met to within one period.
    while (installs.length < 3 && Date.now() < deadline) {
      await sleep(2_000);
      const run = await check(s);
      expect(run.code).toBe(0);
      expect(has(run, 'renewal_failed')).toEqual([]);
      installs.push(...has(run, 'certificate_installed'));
      notDue += has(run, 'renewal_not_due').length;
    }
    expect(installs).toHaveLength(3);
    // Runs between renewals find the certificate not due and leave it alone.
    expect(notDue).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < installs.length; i++) {
      const prev = installs[i - 1]!;
      const notAfter = new Date(prev.notAfter as string).getTime();
      const notBefore = notAfter - 120_000;
      const share = (new Date(installs[i]!.time as string).getTime() - notBefore) / (notAfter - notBefore);
      // Due at 0.55–0.60 of the lifetime; a run comes at most ~2 s (the period) plus a start and an issuance later.
      expect(share).toBeGreaterThanOrEqual(0.55 - 0.005);
      expect(share).toBeLessThanOrEqual(0.6 + 5_000 / 120_000);
      expect(installs[i]!.serial).not.toBe(prev.serial);
    }
    expect(liveCert(s).serialNumber.toLowerCase()).toBe(installs[2]!.serial);
    const status = await runAgent(['status', '--json', '--config', s.config]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).renewal.lastAttempt.result).toBe('renewed');
    expect(existsSync(join(s.stateDir, 'daemon.pid'))).toBe(false);
  }, 200_000);

  it('honours the backoff across runs during a CA outage: runs before the retry time do not contact the CA', async () => {
    // Renewal due at once, so that every pass would go to the CA.
    const s = await setup({ at: 0.1, jitter: 0 });
    const first = await check(s);
    expect(has(first, 'certificate_installed'), JSON.stringify(first.events)).toHaveLength(1);
    const serial = liveCert(s).serialNumber;
    await s.ca.stop();
    const counter = await connectionCounter(s.ca.port);
    let passes = 0;
    let deferred = 0;
    const delays: number[] = [];
    const until = Date.now() + 25_000;
    while (Date.now() < until) {
      const before = counter.count();
      const previous = state(s);
      const run = await check(s);
      expect(run.code).toBe(0);
      const failed = has(run, 'renewal_failed');
      if (failed.length) {
        passes++;
        // This run was due: it started at or after the recorded retry time.
        if (previous.nextAttempt)
          expect(run.endedAt).toBeGreaterThanOrEqual(new Date(previous.nextAttempt as string).getTime());
        expect(counter.count()).toBeGreaterThan(before);
        delays.push(
          new Date(failed[0]!.nextAttempt as string).getTime() - new Date(failed[0]!.time as string).getTime(),
        );
      } else {
        // Not due: nothing but the log line, no connection, state.json untouched.
        const [d] = has(run, 'check_deferred');
        expect(d, JSON.stringify(run.events)).toBeDefined();
        expect(run.events.map((e) => e.event)).toEqual(['check_deferred']);
        expect(run.startedAt).toBeLessThan(new Date(previous.nextAttempt as string).getTime());
        expect(counter.count()).toBe(before);
        expect(state(s)).toEqual(previous);
        deferred++;
      }
      await sleep(200);
    }
    await counter.close();
    expect(passes).toBeGreaterThanOrEqual(3);
    expect(deferred).toBeGreaterThan(passes);
    // The retry interval grows from run to run: the backoff step is carried in state.json.
    expect(delays[delays.length - 1]!).toBeGreaterThan(delays[0]!);
    expect(state(s).consecutiveFailures).toBe(passes);
    expect(liveCert(s).serialNumber).toBe(serial);
    const failedStatus = await runAgent(['status', '--json', '--config', s.config]);
    expect(failedStatus.code).toBe(1);
    expect(JSON.parse(failedStatus.stdout).renewal.lastAttempt.result).toBe('failed');

    await s.ca.start();
    const deadline = Date.now() + 60_000;
    let renewed = false;
    while (!renewed && Date.now() < deadline) {
      renewed = has(await check(s), 'certificate_installed').length > 0;
      if (!renewed) await sleep(500);
    }
    expect(renewed).toBe(true);
    expect(state(s).consecutiveFailures).toBe(0);
    expect(state(s).nextAttempt).toBeUndefined();
  }, 200_000);

  it('serves the placeholder on a first start with the CA down, writes the metrics after each pass, then replaces it', async () => {
    const dirForProm = tempDir();
    cleanups.push(() => rmSync(dirForProm, { recursive: true, force: true }));
    const prom = join(dirForProm, 'cert_agent.prom');
    const s = await setup({ caDown: true, extra: `metrics:\n  textfile: ${prom}\n` });
    const started = Date.now();
    const first = await check(s);
    expect(first.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(has(first, 'placeholder_installed')).toHaveLength(1);
    expect(liveCert(s).subject).toContain('cert-agent placeholder');
    expect(readFileSync(prom, 'utf8')).toMatch(/^cert_agent_certificate_placeholder\{certificate="default"\} 1$/m);
    const status = await runAgent(['status', '--json', '--config', s.config]);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout).certificate.placeholder).toBe(true);

    await s.ca.start();
    const deadline = Date.now() + 60_000;
    let installed: Record<string, unknown> | undefined;
    while (!installed && Date.now() < deadline) {
      await sleep(500);
      [installed] = has(await check(s), 'certificate_installed');
    }
    expect(installed).toBeDefined();
    expect(liveCert(s).subject).not.toContain('placeholder');
    const text = readFileSync(prom, 'utf8');
    expect(text).toMatch(/^cert_agent_certificate_placeholder\{certificate="default"\} 0$/m);
    const notAfter = Math.round(new Date(installed!.notAfter as string).getTime() / 1000);
    expect(text).toMatch(
      new RegExp(`^cert_agent_certificate_not_after_timestamp_seconds(\\{[^}]*\\})? ${notAfter}$`, 'm'),
    );
    expect((await runAgent(['status', '--config', s.config])).code).toBe(0);
  }, 120_000);

  it("runs the daemon's passes: its decision taken as given, the daemon recorded, 75 while the lock is held", async () => {
    // `cert-agent run` starts each pass as the internal `cert-agent __pass`
    // with its pid in --daemon-pid (agent/renewal/pass-process.ts); here
    // this test process is the parent that plays the daemon.
    const s = await setup();
    expect((await check(s)).code).toBe(0);
    const later = new Date(Date.now() + 3600_000).toISOString();
    const backOff = () =>
      writeFileSync(join(s.stateDir, 'state.json'), JSON.stringify({ ...state(s), nextAttempt: later }));
    // The daemon sends the configuration it runs with on stdin.
    const accepted = JSON.stringify(loadConfig(s.config));
    const events = (stdout: string) =>
      stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as Record<string, unknown>).event);
    const pass = async (pid: number) => {
      const args = ['__pass', '--trigger', 'SIGHUP', '--daemon-pid', String(pid)];
      const r = await runAgent(args, { env: { CERT_AGENT_LOG_LEVEL: 'info' }, input: accepted });
      return { code: r.code, events: events(r.stdout) };
    };
    const daemonPid = () => readFileSync(join(s.stateDir, 'daemon.pid'), 'utf8').trim();
    rmSync(join(s.stateDir, 'daemon.pid'), { force: true });

    // `check` is timer mode whatever its environment (the daemon's pass mode is no longer an environment
    // variable): it backs off and records no daemon.
    backOff();
    const env = { CERT_AGENT_LOG_LEVEL: 'info', CERT_AGENT_DAEMON_PID: String(process.pid) };
    const timerMode = await runAgent(['check', '--config', s.config], { env, input: accepted });
    expect({ code: timerMode.code, events: events(timerMode.stdout) }).toEqual({ code: 0, events: ['check_deferred'] });
    expect(existsSync(join(s.stateDir, 'daemon.pid'))).toBe(false);

    // A pid that is not the parent: refused, nothing done.
    const stranger = await pass(1);
    expect(stranger).toEqual({ code: 64, events: [] });
    expect(existsSync(join(s.stateDir, 'daemon.pid'))).toBe(false);

    // The parent: the daemon has decided (a SIGHUP overrides the backoff), so the pass runs.
    const ran = await pass(process.pid);
    expect(ran.code).toBe(0);
    expect(ran.events).toContain('renewal_not_due');
    expect(daemonPid()).toBe(String(process.pid));

    // The file made invalid after the daemon accepted it (a reload kept the previous
    // configuration): the daemon's passes go on with what the daemon runs with.
    const good = readFileSync(s.config, 'utf8');
    writeFileSync(s.config, 'ca: [not, valid\n');
    try {
      const kept = await pass(process.pid);
      expect(kept.code).toBe(0);
      expect(kept.events).toContain('renewal_not_due');
    } finally {
      writeFileSync(s.config, good);
    }

    // Another cert-agent holds the lock (this live process, as lock.ts writes it): 75, nothing done.
    const ticks = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19];
    writeFileSync(join(s.stateDir, 'lock'), `${process.pid} ${ticks}\n`, { mode: 0o600 });
    try {
      expect(await pass(process.pid)).toEqual({ code: 75, events: ['check_skipped'] });
    } finally {
      rmSync(join(s.stateDir, 'lock'), { force: true });
    }
  });

  it("checks at once, backoff or not, when the config file's content changed since the last pass", async () => {
    const s = await setup();
    expect((await check(s)).code).toBe(0);
    const recorded = state(s).configSha256;
    expect(recorded).toMatch(/^[0-9a-f]{64}$/);
    const later = new Date(Date.now() + 3600_000).toISOString();
    const backOff = () =>
      writeFileSync(join(s.stateDir, 'state.json'), JSON.stringify({ ...state(s), nextAttempt: later }));
    // The same bytes written again (a new mtime, as `enroll` with the same arguments would not even do): still backing off.
    backOff();
    writeFileSync(s.config, readFileSync(s.config));
    expect(has(await check(s), 'check_deferred')).toHaveLength(1);
    // Other bytes: the pass runs despite the backoff, and records the new digest.
    writeFileSync(s.config, `${readFileSync(s.config, 'utf8')}# rewritten\n`);
    const changed = await check(s);
    expect(has(changed, 'check_deferred')).toHaveLength(0);
    expect(has(changed, 'renewal_not_due')).toHaveLength(1);
    expect(state(s).configSha256).not.toBe(recorded);
    backOff();
    expect(has(await check(s), 'check_deferred')).toHaveLength(1);
  });

  it('refuses a bad config with 78 and one line, writing nothing', async () => {
    const dir = tempDir();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'ca: {url: "http://x"}\n');
    const r = await runAgent(['check', '--config', config]);
    expect(r.code).toBe(78);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });
});
