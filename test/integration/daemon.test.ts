/**
 * The daemon (`cert-agent run`, from the bundle) against real step-ca
 * instances issuing two-minute certificates (one minute, plus step-ca's one
 * minute of backdating): scheduled renewals, a CA outage, a CA that lost its
 * database, a CA recreated with a new root, and a first start with the CA down.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { enrollAgent } from '../helpers/enrolled.js';
import { DaemonProcess } from '../helpers/daemon.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Setup {
  ca: StepCa;
  dir: string;
  config: string;
  certDir: string;
}

async function setup(
  opts: { enroll?: boolean; at?: number; jitter?: number; caDown?: boolean; method?: string } = {},
): Promise<Setup> {
  const ca = await startStepCa({ certDuration: '1m' });
  const dir = tempDir();
  cleanups.push(
    () => ca.cleanup(),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  const config = join(dir, 'config.yaml');
  const certDir = join(dir, 'tls');
  if (opts.caDown) await ca.stop();
  await enrollAgent(ca, dir, { extra: opts.caDown ? ['--allow-unreachable'] : [] });
  // Check every second so the tests see the schedule, not the cron granularity.
  writeFileSync(
    config,
    readFileSync(config, 'utf8') +
      `renewal:\n  at: ${opts.at ?? 0.6}\n  jitter: ${opts.jitter ?? 0.05}\n  check: "* * * * * *"\n` +
      (opts.method ? `  method: ${opts.method}\n` : ''),
  );
  return { ca, dir, config, certDir };
}

function start(s: Setup): DaemonProcess {
  const d = new DaemonProcess(s.config);
  cleanups.push(() => d.stop());
  return d;
}

const liveCert = (s: Setup) => new X509Certificate(readFileSync(join(s.certDir, 'cert.pem')));
const statusJson = async (s: Setup) => {
  const r = await runAgent(['status', '--json', '--config', s.config]);
  return { code: r.code, json: JSON.parse(r.stdout) };
};

describe.concurrent('cert-agent run', () => {
  it('renews three times in a row at the scheduled share of the lifetime, then stops cleanly on SIGTERM', async () => {
    const s = await setup();
    const d = start(s);
    const installs = await d.waitFor('certificate_installed', 4, 120_000);
    for (let i = 1; i < installs.length; i++) {
      const prev = installs[i - 1]!;
      const notAfter = new Date(prev.notAfter as string).getTime();
      const issued = new X509Certificate(readFileSync(join(s.certDir, 'cert.pem')));
      expect(issued).toBeDefined();
      // Lifetime of the previous certificate: notBefore = notAfter − 2 min (1 min + 1 min backdating).
      const notBefore = notAfter - 120_000;
      const renewedAt = new Date(installs[i]!.time).getTime();
      const share = (renewedAt - notBefore) / (notAfter - notBefore);
      // Scheduled at 0.55–0.60 of the lifetime; allow ~4 s for a check and an issuance on a busy machine.
      expect(share).toBeGreaterThanOrEqual(0.55 - 0.005);
      expect(share).toBeLessThanOrEqual(0.6 + 0.035);
      expect(installs[i]!.serial).not.toBe(prev.serial);
    }
    expect(liveCert(s).serialNumber.toLowerCase()).toBe(installs[3]!.serial);
    expect(await d.stop()).toBe(0);
    expect(d.events('daemon_stopped')).toHaveLength(1);
    expect(existsSync(join(s.dir, 'state', 'lock'))).toBe(false);
  }, 150_000);

  it('keeps the certificate while the CA is down, backs off with growing intervals, renews soon after it returns', async () => {
    const s = await setup();
    const d = start(s);
    const [first] = await d.waitFor('certificate_installed', 1);
    await s.ca.stop();
    const failures = await d.waitFor('renewal_failed', 4, 60_000);
    expect(liveCert(s).serialNumber.toLowerCase()).toBe(first!.serial);
    const delays = failures.map((f) => new Date(f.nextAttempt as string).getTime() - new Date(f.time).getTime());
    // Equal-jitter exponential backoff: every step at least the previous step's floor.
    for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThan(delays[i - 1]! / 2);
    expect(delays[3]!).toBeGreaterThan(delays[0]!);
    expect(failures.map((f) => f.attempt)).toEqual([1, 2, 3, 4]);
    expect(failures.every((f) => /cannot reach|did not answer/.test(String(f.error)))).toBe(true);
    const status = await statusJson(s);
    expect(status.code).toBe(1);
    expect(status.json.renewal.lastAttempt.result).toBe('failed');
    const restartedAt = Date.now();
    await s.ca.start();
    const installs = await d.waitFor('certificate_installed', 2, 60_000);
    const lastDelay = delays[delays.length - 1]!;
    const afterReturn = new Date(installs[1]!.time).getTime() - restartedAt;
    // Within one backoff step of the CA's return (the step after the last logged one at most doubles).
    expect(afterReturn).toBeLessThanOrEqual(lastDelay * 2 + 3000);
    expect((await statusJson(s)).code).toBe(0);
  }, 150_000);

  it('registers a new account by itself when the CA lost its database', async () => {
    // ACME orders only: a renewal over the CA's API needs no account (and goes on after the wipe).
    const s = await setup({ method: 'acme' });
    const d = start(s);
    await d.waitFor('certificate_installed', 1);
    await s.ca.resetDatabase();
    await d.waitFor('certificate_installed', 2, 60_000);
    expect(d.events('account_unknown').length).toBeGreaterThanOrEqual(1);
    expect(d.events('account_registered').length).toBe(2);
    expect(d.events('renewal_failed')).toHaveLength(0);
  }, 120_000);

  it('does not trust a recreated CA, goes CRITICAL naming the new root, and recovers after enroll without a restart', async () => {
    const s = await setup();
    const d = start(s);
    const [first] = await d.waitFor('certificate_installed', 1);
    const oldFp = s.ca.rootFingerprint;
    await s.ca.recreate();
    const newFp = s.ca.rootFingerprint;
    expect(newFp).not.toBe(oldFp);
    const [failure] = await d.waitFor('renewal_failed', 1, 60_000);
    expect(failure!.errorKind).toBe('trust');
    expect(liveCert(s).serialNumber.toLowerCase()).toBe(first!.serial);
    const status = await statusJson(s);
    expect(status.code).toBe(2);
    expect(status.json.ca.trust).toBe('broken');
    expect(status.json.ca.offeredFingerprints).toEqual([newFp]);
    expect(status.json.problems.join(' ')).toContain(newFp);
    const text = await runAgent(['status', '--config', s.config]);
    expect(text.stdout).toContain('cert-agent enroll --fingerprint');
    const r = await runAgent(['enroll', '--config', s.config, '--fingerprint', newFp]);
    expect(r.code, r.stderr).toBe(0);
    await d.waitFor('certificate_installed', 2, 60_000);
    const root = new X509Certificate(s.ca.rootPem);
    const cert = liveCert(s);
    const chain = new X509Certificate(readFileSync(join(s.certDir, 'chain.pem')));
    expect(cert.verify(chain.publicKey)).toBe(true);
    expect(chain.verify(root.publicKey)).toBe(true);
    expect(d.events('config_reloaded').length).toBeGreaterThanOrEqual(1);
    expect((await statusJson(s)).json.ca.trust).toBe('ok');
  }, 150_000);

  it('serves a marked placeholder within seconds when started with the CA down, and replaces it when the CA starts', async () => {
    const s = await setup({ caDown: true });
    const started = Date.now();
    const d = start(s);
    await d.waitFor('placeholder_installed', 1, 20_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(liveCert(s).subject).toContain('cert-agent placeholder');
    expect(readFileSync(join(s.certDir, 'key.pem'), 'utf8')).toContain('PRIVATE KEY');
    const status = await statusJson(s);
    expect(status.code).toBe(1);
    expect(status.json.certificate.placeholder).toBe(true);
    await s.ca.start();
    const [installed] = await d.waitFor('certificate_installed', 2, 90_000);
    expect(installed).toBeDefined();
    const real = liveCert(s);
    expect(real.subject).not.toContain('placeholder');
    expect(real.issuer).toContain('Intermediate');
    expect((await statusJson(s)).code).toBe(0);
  }, 150_000);

  it('keeps the old configuration when SIGHUP brings an invalid one', async () => {
    const s = await setup();
    const d = start(s);
    await d.waitFor('certificate_installed', 1);
    const good = readFileSync(s.config, 'utf8');
    writeFileSync(s.config, good.replace('keyType', 'keyTyp') + 'bogus: 1\n');
    d.signal('SIGHUP');
    const [invalid] = await d.waitFor('config_invalid', 1, 10_000);
    expect(String(invalid!.error)).toContain('bogus: unknown field');
    writeFileSync(s.config, good);
    await d.waitFor('certificate_installed', 2, 60_000);
    expect(await d.stop()).toBe(0);
  }, 120_000);
});

describe('metrics textfile', () => {
  it('is written after each pass of the daemon', async () => {
    const s = await setup();
    const prom = join(s.dir, 'cert_agent.prom');
    writeFileSync(s.config, readFileSync(s.config, 'utf8') + `metrics:\n  textfile: ${prom}\n`);
    const d = start(s);
    const [installed] = await d.waitFor('certificate_installed', 1);
    const deadline = Date.now() + 10_000;
    while (!existsSync(prom) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const text = readFileSync(prom, 'utf8');
    const notAfter = Math.round(new Date(installed!.notAfter as string).getTime() / 1000);
    expect(text).toMatch(
      new RegExp(`^cert_agent_certificate_not_after_timestamp_seconds(\\{[^}]*\\})? ${notAfter}$`, 'm'),
    );
    expect(await d.stop()).toBe(0);
  }, 60_000);
});
