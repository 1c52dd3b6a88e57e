/**
 * The fleet: N agents, each its own `cert-agent enroll` + `cert-agent run`
 * process with its own directories, ACME account and key, its own name
 * (an IP identifier 127.10.x.y) and its own standalone http-01 listener on
 * that address — like N containers, each with its own address and port 80.
 * All of them start at once against one step-ca issuing two-minute
 * certificates (three minutes of lifetime with the backdating), behind a
 * counting HTTPS proxy that records how many requests are in flight at the
 * CA; then every agent renews on its own schedule (renewal.at 0.66, jitter
 * 0.05: the defaults).
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startStepCa } from '../../test/harness/stepca.js';
import { enroll, eventTime } from '../lib/agent.js';
import type { PhaseReport } from '../lib/caproxy.js';
import { Daemon } from '../lib/daemon.js';
import { CLK_TCK, pidsMatching, readProc, sleep } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

const execFileP = promisify(execFile);

export interface FleetResult {
  size: number;
  certified: number;
  renewed: number;
  enrollFailures: string[];
  renewalFailures: number;
  placeholders: number;
  /** ms from the common start to the last agent's first certificate */
  allCertifiedMs: number;
  /** per agent: common start → its first certificate */
  timeToCert: Summary;
  enrollMs: Summary;
  /** per agent: renewal_started → certificate_installed, first certificate */
  issueMs: Summary;
  /** per agent: renewal_started → certificate_installed, the renewal */
  renewMs: Summary;
  /** first to last renewal decision across the fleet */
  renewalWindowMs: number;
  enrollPhase: PhaseSummary;
  renewPhase: PhaseSummary;
  /** sum of the agents' RSS once all were certified */
  fleetRssKb: number;
  perAgentRssKb: Summary;
  caCpuMs: { enroll: number; renew: number };
  error?: string;
}

export interface PhaseSummary {
  requests: number;
  peakInFlight: number;
  peakConnections: number;
  caLatency: Summary;
  peakRequestsPerSecond: number;
  byKind: Record<string, number>;
  errors: number;
  non2xx: number;
}

function phase(r: PhaseReport): PhaseSummary {
  return {
    requests: r.requests,
    peakInFlight: r.peakInFlight,
    peakConnections: r.peakConnections,
    caLatency: summarize(r.upstreamMs),
    peakRequestsPerSecond: Math.max(0, ...r.perSecond.map((s) => s[1])),
    byKind: r.byKind,
    errors: r.errors,
    non2xx: Object.entries(r.byStatus).filter(([s]) => !/^2/.test(s)).reduce((a, [, n]) => a + n, 0),
  };
}

function addressOf(i: number): string {
  return `127.10.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

export async function fleetSection(agentBin: string, proxyScript: string, baseDir: string, size: number): Promise<FleetResult> {
  const ca = await startStepCa({ certDuration: '2m' });
  let proxy: ChildProcess | undefined;
  const daemons: Daemon[] = [];
  try {
    // The proxy's TLS certificate, from the CA's own intermediate.
    const caCfg = JSON.parse(readFileSync(join(ca.dir, 'ca.json'), 'utf8')) as { crt: string; key: string };
    const keyFile = join(baseDir, 'proxy.key');
    const certFile = join(baseDir, 'proxy.crt');
    const ext = join(baseDir, 'proxy.ext');
    writeFileSync(ext, 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n');
    await execFileP('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', join(baseDir, 'proxy.csr'), '-subj', '/CN=localhost'], { cwd: baseDir });
    await execFileP('openssl', ['x509', '-req', '-in', join(baseDir, 'proxy.csr'), '-CA', caCfg.crt, '-CAkey', caCfg.key, '-CAcreateserial', '-days', '2', '-sha256', '-extfile', ext, '-out', certFile], { cwd: baseDir });
    writeFileSync(certFile, readFileSync(certFile, 'utf8') + readFileSync(caCfg.crt, 'utf8'));

    proxy = fork(proxyScript, [], { env: { ...process.env, CAPROXY_CONFIG: JSON.stringify({ upstreamPort: ca.port, keyFile, certFile }) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      proxy!.once('message', (m: { type: string; port: number }) => (m.type === 'ready' ? resolve(m.port) : reject(new Error('proxy did not start'))));
      proxy!.once('exit', () => reject(new Error('proxy exited')));
    });
    const report = () => new Promise<PhaseReport>((resolve) => {
      proxy!.once('message', (m: { type: string; report: PhaseReport }) => resolve(m.report));
      proxy!.send({ type: 'report' });
    });
    const caUrl = `https://127.0.0.1:${port}`;
    const caPid = pidsMatching(join(ca.dir, 'ca.json')).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0]!.endsWith('step-ca'));
    const caTicks = () => (caPid ? readProc(caPid)?.ticks ?? NaN : NaN);

    await report(); // discard the proxy's own start-up phase
    const enrollFailures: string[] = [];
    const enrollMs: number[] = [];
    const ticks0 = caTicks();
    const t0 = Date.now();
    const firstCert = new Array<number>(size).fill(NaN);
    await Promise.all(Array.from({ length: size }, async (_, i) => {
      const addr = addressOf(i);
      try {
        const a = await enroll(agentBin, join(baseDir, `agent-${String(i).padStart(4, '0')}`), { caUrl, fingerprint: ca.rootFingerprint, domain: addr, listen: `${addr}:${ca.acmeHttpPort}` });
        enrollMs.push(a.ms);
        const d = new Daemon(agentBin, a.config, a.dir);
        daemons[i] = d;
        const [first] = await d.waitFor('certificate_installed', 1, 180_000);
        firstCert[i] = eventTime(first!) - t0;
      } catch (err) {
        enrollFailures.push(`agent ${i} (${addr}): ${String(err).split('\n')[0]}`);
      }
    }));
    const allCertifiedMs = Math.max(...firstCert.filter(Number.isFinite));
    const enrollPhase = phase(await report());
    const ticks1 = caTicks();
    const rss = daemons.filter(Boolean).map((d) => readProc(d.pid)?.rssKb ?? NaN).filter(Number.isFinite);

    // Renewals: every certified agent renews once, when its own schedule says.
    const live = daemons.filter((d): d is Daemon => Boolean(d) && d.events('certificate_installed').length > 0);
    const due = live.map((d) => Date.parse(String(d.events('certificate_installed')[0]!.nextRenewal)));
    const deadline = Math.max(...due) + 60_000;
    await Promise.all(live.map((d) => d.waitFor('certificate_installed', 2, Math.max(1_000, deadline - Date.now())).catch(() => undefined)));
    await sleep(500);
    const renewPhase = phase(await report());
    const ticks2 = caTicks();

    const issue: number[] = [];
    const renew: number[] = [];
    const renewStarts: number[] = [];
    for (const d of live) {
      const starts = d.events('renewal_started');
      const installs = d.events('certificate_installed');
      if (installs[0] && starts[0]) issue.push(eventTime(installs[0]) - eventTime(starts[0]));
      if (installs[1] && starts[1]) {
        renew.push(eventTime(installs[1]) - eventTime(starts[1]));
        renewStarts.push(eventTime(starts[1]));
      }
    }
    const all = daemons.filter(Boolean);
    return {
      size,
      certified: live.length,
      renewed: renew.length,
      enrollFailures,
      renewalFailures: all.reduce((n, d) => n + d.events('renewal_failed').length, 0),
      placeholders: all.reduce((n, d) => n + d.events('placeholder_installed').length, 0),
      allCertifiedMs,
      timeToCert: summarize(firstCert),
      enrollMs: summarize(enrollMs),
      issueMs: summarize(issue),
      renewMs: summarize(renew),
      renewalWindowMs: renewStarts.length ? Math.max(...renewStarts) - Math.min(...renewStarts) : NaN,
      enrollPhase,
      renewPhase,
      fleetRssKb: rss.reduce((a, b) => a + b, 0),
      perAgentRssKb: summarize(rss),
      caCpuMs: { enroll: ((ticks1 - ticks0) * 1000) / CLK_TCK, renew: ((ticks2 - ticks1) * 1000) / CLK_TCK },
    };
  } finally {
    await Promise.all(daemons.filter(Boolean).map((d) => d.stop()));
    proxy?.disconnect();
    proxy?.kill('SIGTERM');
    await ca.cleanup();
  }
}
