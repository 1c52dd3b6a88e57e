/**
 * The fleet: N agents against one step-ca, each with its own directories,
 * ACME account and keys, its own name (an IP identifier 127.10.x.y) and its
 * own standalone http-01 listener on that address — like N containers, each
 * with its own address and port 80. step-ca issues two-minute certificates
 * (three minutes of lifetime with the backdating), behind a counting HTTPS
 * proxy that records how many requests are in flight at the CA.
 *
 * Every agent is enrolled first (`cert-agent enroll`: config and pinned
 * root, as a container's post-install hook does), a few at a time. Then all
 * daemons start at the same moment and request their first certificate at
 * once; then each renews on its own schedule (renewal.at 0.66, jitter 0.05:
 * the defaults). Two ways to run the daemons:
 *   - processes: N `cert-agent run` processes (what N containers run);
 *   - instances: N instances of the daemon (agent/renewal/daemon.ts) spread over one
 *     worker process per core, so the agents' own start-up is paid once per
 *     worker rather than N times.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startStepCa } from '../../test/harness/stepca.js';
import { enroll, eventTime, type AgentDirs } from '../lib/agent.js';
import type { PhaseReport } from '../lib/caproxy.js';
import { Daemon, EventLog, type LogLine } from '../lib/daemon.js';
import { CLK_TCK, machineCpu, pidsMatching, readProc, sleep, track } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

const execFileP = promisify(execFile);

export type FleetMode = 'processes' | 'instances';

export interface FleetResult {
  mode: FleetMode;
  size: number;
  enrollConcurrency: number;
  workers: number;
  enrolled: number;
  certified: number;
  renewed: number;
  enrollFailures: string[];
  startFailures: string[];
  renewalFailures: number;
  /** distinct errors of failed attempts (first few) */
  failureMessages: string[];
  placeholders: number;
  /** ms from the common start to the last agent's first certificate */
  allCertifiedMs: number;
  /** per agent: common start → its first certificate */
  timeToCert: Summary;
  /** per agent: the `enroll` process (before the common start) */
  enrollMs: Summary;
  /** per agent: renewal_started → certificate_installed, first certificate */
  issueMs: Summary;
  /** per agent: renewal_started → certificate_installed, the renewal */
  renewMs: Summary;
  /** first to last renewal decision across the fleet */
  renewalWindowMs: number;
  enrollPhase: PhaseSummary;
  renewPhase: PhaseSummary;
  /** CPU of the agents' processes from the common start until all were certified */
  agentCpuMs: number;
  proxyCpuMs: number;
  /** CPU of the whole machine (all processes, all cores) in the same window */
  machineBusyMs: number;
  caCpuMs: { enroll: number; renew: number };
  /** resident memory of the agents' processes once all were certified */
  rssKb: number;
}

export interface PhaseSummary {
  requests: number;
  peakInFlight: number;
  peakConnections: number;
  caLatency: Summary;
  peakRequestsPerSecond: number;
  byKind: Record<string, number>;
  errors: number;
  errorMessages: string[];
  retried: number;
  non2xx: number;
  /** requests started in each second of the phase (first 60 s) */
  perSecond: number[];
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
    errorMessages: r.errorMessages,
    retried: r.retried,
    perSecond: Array.from(
      { length: Math.min(60, (r.perSecond[r.perSecond.length - 1]?.[0] ?? -1) + 1) },
      (_, i) => r.perSecond.find((x) => x[0] === i)?.[1] ?? 0,
    ),
    non2xx: Object.entries(r.byStatus)
      .filter(([s]) => !/^2/.test(s))
      .reduce((a, [, n]) => a + n, 0),
  };
}

function addressOf(i: number): string {
  return `127.10.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

export interface FleetScripts {
  proxy: string;
  worker: string;
}

export async function fleetSection(
  agentBin: string,
  scripts: FleetScripts,
  baseDir: string,
  size: number,
  mode: FleetMode,
  enrollConcurrency: number,
): Promise<FleetResult> {
  const ca = await startStepCa({ certDuration: '2m' });
  let proxy: ChildProcess | undefined;
  const daemons: Daemon[] = [];
  const workers: ChildProcess[] = [];
  try {
    // The proxy's TLS certificate, from the CA's own intermediate.
    const caCfg = JSON.parse(readFileSync(join(ca.dir, 'ca.json'), 'utf8')) as { crt: string; key: string };
    const keyFile = join(baseDir, 'proxy.key');
    const certFile = join(baseDir, 'proxy.crt');
    const ext = join(baseDir, 'proxy.ext');
    writeFileSync(
      ext,
      'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n',
    );
    await execFileP(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        join(baseDir, 'proxy.csr'),
        '-subj',
        '/CN=localhost',
      ],
      { cwd: baseDir },
    );
    await execFileP(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        join(baseDir, 'proxy.csr'),
        '-CA',
        caCfg.crt,
        '-CAkey',
        caCfg.key,
        '-CAcreateserial',
        '-days',
        '2',
        '-sha256',
        '-extfile',
        ext,
        '-out',
        certFile,
      ],
      { cwd: baseDir },
    );
    writeFileSync(certFile, readFileSync(certFile, 'utf8') + readFileSync(caCfg.crt, 'utf8'));

    proxy = track(
      fork(scripts.proxy, [], {
        env: { ...process.env, CAPROXY_CONFIG: JSON.stringify({ upstreamPort: ca.port, keyFile, certFile }) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    const port = await new Promise<number>((resolve, reject) => {
      proxy!.once('message', (m: { type: string; port: number }) =>
        m.type === 'ready' ? resolve(m.port) : reject(new Error('proxy did not start')),
      );
      proxy!.once('exit', () => reject(new Error('proxy exited')));
    });
    const report = () =>
      new Promise<PhaseReport>((resolve) => {
        proxy!.once('message', (m: { type: string; report: PhaseReport }) => resolve(m.report));
        proxy!.send({ type: 'report' });
      });
    const caUrl = `https://127.0.0.1:${port}`;
    const caPid = pidsMatching(join(ca.dir, 'ca.json')).find((p) =>
      readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0]!.endsWith('step-ca'),
    );
    const ticksOf = (pid: number | undefined) => (pid ? (readProc(pid)?.ticks ?? NaN) : NaN);
    const ms = (ticks: number) => (ticks * 1000) / CLK_TCK;

    // 1. Enrollment (config + pinned root), a few at a time.
    const enrolled: (AgentDirs | undefined)[] = new Array(size).fill(undefined);
    const enrollMs: number[] = [];
    const enrollFailures: string[] = [];
    await pool(
      Array.from({ length: size }, (_, i) => i),
      enrollConcurrency,
      async (i) => {
        const addr = addressOf(i);
        try {
          const a = await enroll(agentBin, join(baseDir, `agent-${String(i).padStart(4, '0')}`), {
            caUrl,
            fingerprint: ca.rootFingerprint,
            domain: addr,
            listen: `${addr}:${ca.acmeHttpPort}`,
          });
          enrolled[i] = a;
          enrollMs.push(a.ms);
        } catch (err) {
          enrollFailures.push(`agent ${i} (${addr}): ${String(err).split('\n')[0]}`);
        }
      },
    );
    await report(); // the enrollment requests are not part of the storm

    // 2. All daemons at once.
    const logs: (EventLog | undefined)[] = new Array(size).fill(undefined);
    const agentPids: number[] = [];
    const startFailures: string[] = [];
    const ticks0 = ticksOf(caPid);
    const proxyTicks0 = ticksOf(proxy.pid);
    let t0: number;
    if (mode === 'processes') {
      t0 = Date.now();
      enrolled.forEach((a, i) => {
        if (!a) return;
        const d = new Daemon(agentBin, a.config, a.dir);
        daemons.push(d);
        logs[i] = d;
        agentPids.push(d.pid);
      });
    } else {
      const n = Math.max(1, cpus().length);
      const ids = enrolled.map((a, i) => (a ? i : -1)).filter((i) => i >= 0);
      const per = Math.ceil(ids.length / n);
      for (let w = 0; w < n; w++) {
        const mine = ids.slice(w * per, (w + 1) * per);
        if (!mine.length) continue;
        for (const i of mine) logs[i] = new EventLog();
        const child = track(
          fork(scripts.worker, [], {
            env: {
              ...process.env,
              CERT_AGENT_FLEET_CONFIGS: JSON.stringify(mine.map((i) => enrolled[i]!.config)),
              CERT_AGENT_FLEET_BASE: '0',
            },
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          }),
        );
        child.on('message', (m: { type: string; agent: number; line: LogLine }) => {
          if (m.type === 'log') logs[mine[m.agent]!]!.push(m.line);
        });
        await new Promise<void>((resolve, reject) => {
          child.once('message', (m: { type: string }) => (m.type === 'ready' ? resolve() : undefined));
          child.once('exit', (code) => reject(new Error(`fleet worker exited (${code})`)));
        });
        workers.push(child);
        agentPids.push(child.pid!);
      }
      t0 = Date.now();
      for (const w of workers) w.send({ type: 'start' });
    }
    const cpuAtStart = agentPids.reduce((a, p) => a + (ticksOf(p) || 0), 0);
    const machineAtStart = machineCpu();
    const firstCert = new Array<number>(size).fill(NaN);
    await Promise.all(
      logs.map(async (log, i) => {
        if (!log) return;
        try {
          const [first] = await log.waitFor('certificate_installed', 1, 180_000);
          firstCert[i] = eventTime(first!) - t0;
        } catch (err) {
          startFailures.push(`agent ${i}: ${String(err).split('\n')[0]}`);
        }
      }),
    );
    const certifiedTimes = firstCert.filter(Number.isFinite);
    const allCertifiedMs = certifiedTimes.length ? Math.max(...certifiedTimes) : NaN;
    const agentCpuMs = ms(agentPids.reduce((a, p) => a + (ticksOf(p) || 0), 0) - cpuAtStart);
    const machineAtEnd = machineCpu();
    const machineBusyMs = machineAtEnd.busyMs - machineAtStart.busyMs;
    const rssKb = agentPids.reduce((a, p) => a + (readProc(p)?.rssKb ?? 0), 0);
    const enrollPhase = phase(await report());
    const ticks1 = ticksOf(caPid);
    const proxyTicks1 = ticksOf(proxy.pid);

    // 3. Renewals: every certified agent renews once, when its own schedule says.
    const live = logs.filter((d): d is EventLog => Boolean(d) && d!.events('certificate_installed').length > 0);
    const due = live.map((d) => Date.parse(String(d.events('certificate_installed')[0]!.nextRenewal)));
    const deadline = (due.length ? Math.max(...due) : Date.now()) + 60_000;
    await Promise.all(
      live.map((d) =>
        d.waitFor('certificate_installed', 2, Math.max(1_000, deadline - Date.now())).catch(() => undefined),
      ),
    );
    await sleep(500);
    const renewPhase = phase(await report());
    const ticks2 = ticksOf(caPid);

    const issue: number[] = [];
    const renew: number[] = [];
    const renewStarts: number[] = [];
    for (const d of live) {
      const starts = d.events('renewal_started').map(eventTime);
      const installs = d.events('certificate_installed').map(eventTime);
      // The successful attempt: the last decision before each install.
      const lastStartBefore = (t: number) => starts.filter((s) => s <= t).pop();
      const s0 = lastStartBefore(installs[0]!);
      if (s0 !== undefined) issue.push(installs[0]! - s0);
      const s1 = installs[1] !== undefined ? lastStartBefore(installs[1]) : undefined;
      if (installs[1] !== undefined && s1 !== undefined && s1 > installs[0]!) {
        renew.push(installs[1] - s1);
        renewStarts.push(starts.find((s) => s > installs[0]!)!);
      }
    }
    const all = logs.filter((l): l is EventLog => Boolean(l));
    return {
      mode,
      size,
      enrollConcurrency,
      workers: mode === 'processes' ? agentPids.length : workers.length,
      enrolled: enrolled.filter(Boolean).length,
      certified: live.length,
      renewed: renew.length,
      enrollFailures,
      startFailures,
      renewalFailures: all.reduce((n, d) => n + d.events('renewal_failed').length, 0),
      failureMessages: [...new Set(all.flatMap((d) => d.events('renewal_failed').map((l) => String(l.error))))].slice(
        0,
        5,
      ),
      placeholders: all.reduce((n, d) => n + d.events('placeholder_installed').length, 0),
      allCertifiedMs,
      timeToCert: summarize(certifiedTimes),
      enrollMs: summarize(enrollMs),
      issueMs: summarize(issue),
      renewMs: summarize(renew),
      renewalWindowMs: renewStarts.length ? Math.max(...renewStarts) - Math.min(...renewStarts) : NaN,
      enrollPhase,
      renewPhase,
      agentCpuMs,
      proxyCpuMs: ms(proxyTicks1 - proxyTicks0),
      machineBusyMs,
      caCpuMs: { enroll: ms(ticks1 - ticks0), renew: ms(ticks2 - ticks1) },
      rssKb,
    };
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.exitCode !== null) return resolve();
            w.once('exit', () => resolve());
            w.send({ type: 'stop' });
            setTimeout(() => w.kill('SIGKILL'), 15_000).unref();
          }),
      ),
    );
    proxy?.disconnect();
    proxy?.kill('SIGTERM');
    await ca.cleanup();
  }
}
