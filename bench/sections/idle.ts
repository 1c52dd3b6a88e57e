/**
 * The idle daemon: once the daemon has its certificate, sample its resident
 * memory and CPU time every second for the idle window, side by side with
 * `step ca renew --daemon` watching a certificate from the same CA. CPU is
 * read from /proc/<pid>/stat (clock ticks of 10 ms), so "no measurable CPU"
 * means no tick counted. The daemon's periodic checks are logged
 * (`renewal_not_due`), so CPU can be split into "at a check" and "between
 * checks". Next to the default daemon run a few with V8 flags that trade
 * speed for memory (a systemd unit could pass them), each with its own name
 * (an IP identifier 127.20.0.x) so their first issuances do not share a
 * listener.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StepCa } from '../../test/harness/stepca.js';
import { enroll, eventTime } from '../lib/agent.js';
import { Daemon } from '../lib/daemon.js';
import { CLK_TCK, cleanEnv, readProc, rssByMapping, run, sleep, track, type ProcSample } from '../lib/proc.js';

export interface IdleSeries {
  name: string;
  samples: ProcSample[];
  hwmKb: number;
  /** checks logged by the daemon inside the window (ms since window start) */
  checksAt: number[];
  /** resident memory by mapping at the end of the window (KiB) */
  mappings?: Record<string, number>;
}

export interface IdleResult {
  seconds: number;
  series: IdleSeries[];
  config: string;
  failedVariants: string[];
}

export interface IdleHandle {
  /** Config of the idle cert-agent (enrolled, certificate installed): `status` runs against it. */
  config: string;
  done: Promise<IdleResult>;
}

/** V8 flag sets tried next to the default daemon. */
export const FLAG_VARIANTS: string[][] = [
  ['--max-semi-space-size=1'],
  ['--optimize-for-size'],
  ['--max-semi-space-size=1', '--optimize-for-size'],
];

export async function startIdle(
  ca: StepCa,
  agentBin: string,
  rootFile: string,
  stepBin: string | undefined,
  baseDir: string,
  seconds: number,
): Promise<IdleHandle> {
  const a = await enroll(agentBin, join(baseDir, 'agent'), {
    caUrl: ca.url,
    fingerprint: ca.rootFingerprint,
    domain: 'localhost',
    listen: `127.0.0.1:${ca.acmeHttpPort}`,
  });
  const daemon = new Daemon(agentBin, a.config, a.dir);
  try {
    await daemon.waitFor('certificate_installed', 1, 60_000);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  const variants: { name: string; daemon: Daemon }[] = [];
  const failedVariants: string[] = [];
  for (const [k, flags] of FLAG_VARIANTS.entries()) {
    const addr = `127.20.0.${k + 1}`;
    const name = `cert-agent run, node ${flags.join(' ')}`;
    let d: Daemon | undefined;
    try {
      const v = await enroll(agentBin, join(baseDir, `variant-${k}`), {
        caUrl: ca.url,
        fingerprint: ca.rootFingerprint,
        domain: addr,
        listen: `${addr}:${ca.acmeHttpPort}`,
      });
      d = new Daemon(agentBin, v.config, v.dir, flags);
      await d.waitFor('certificate_installed', 1, 60_000);
      variants.push({ name, daemon: d });
    } catch (err) {
      await d?.stop();
      failedVariants.push(`${name}: ${String(err).split('\n')[0]}`);
    }
  }

  let step: { pid: number; stop: () => void; note?: string } | undefined;
  if (stepBin)
    try {
      const dir = join(baseDir, 'step');
      mkdirSync(dir, { recursive: true });
      const env = cleanEnv({ STEPPATH: join(dir, 'step') });
      const crt = join(dir, 'c.crt');
      const key = join(dir, 'c.key');
      const issued = await run(
        [
          stepBin,
          'ca',
          'certificate',
          'localhost',
          crt,
          key,
          '--provisioner',
          'acme',
          '--ca-url',
          ca.url,
          '--root',
          rootFile,
          '--http-listen',
          `127.0.0.1:${ca.acmeHttpPort}`,
          '--kty',
          'EC',
          '--curve',
          'P-256',
          '-f',
        ],
        { env, cwd: dir },
      );
      if (issued.code === 0) {
        const child = track(
          spawn(stepBin, ['ca', 'renew', '--daemon', '--ca-url', ca.url, '--root', rootFile, crt, key], {
            env,
            cwd: dir,
            stdio: 'ignore',
          }),
        );
        step = { pid: child.pid!, stop: () => child.kill('SIGTERM') };
      }
    } catch (err) {
      await Promise.all([daemon, ...variants.map((v) => v.daemon)].map((d) => d.stop()));
      throw err;
    }

  const done = (async (): Promise<IdleResult> => {
    try {
      await sleep(5_000); // let start-up work (JIT, GC after issuance) settle
      const series: IdleSeries[] = [{ name: 'cert-agent run', samples: [], hwmKb: NaN, checksAt: [] }];
      const pids = [daemon.pid];
      for (const v of variants) {
        series.push({ name: v.name, samples: [], hwmKb: NaN, checksAt: [] });
        pids.push(v.daemon.pid);
      }
      if (step) {
        series.push({ name: 'step ca renew --daemon', samples: [], hwmKb: NaN, checksAt: [] });
        pids.push(step.pid);
      }
      const start = Date.now();
      const checksBefore = daemon.events('renewal_not_due').length;
      for (let i = 0; i <= seconds; i++) {
        const t = Date.now() - start;
        pids.forEach((pid, k) => {
          const p = readProc(pid);
          if (p) {
            series[k]!.samples.push({ t, rssKb: p.rssKb, ticks: p.ticks });
            series[k]!.hwmKb = p.hwmKb;
          }
        });
        if (i < seconds) await sleep(Math.max(0, start + (i + 1) * 1000 - Date.now()));
      }
      pids.forEach((pid, k) => {
        const m = rssByMapping(pid);
        if (m) series[k]!.mappings = m;
      });
      series[0]!.checksAt = daemon
        .events('renewal_not_due')
        .slice(checksBefore)
        .map((l) => eventTime(l) - start);
      variants.forEach((v, k) => {
        series[1 + k]!.checksAt = v.daemon
          .events('renewal_not_due')
          .filter((l) => eventTime(l) >= start)
          .map((l) => eventTime(l) - start);
      });
      return { seconds, series, config: a.config, failedVariants };
    } finally {
      step?.stop();
      await Promise.all([daemon, ...variants.map((v) => v.daemon)].map((d) => d.stop()));
    }
  })();
  return { config: a.config, done };
}

/** Ticks spent within ±1.5 s of a logged check vs the rest of the window. */
export function splitCpu(s: IdleSeries): {
  totalMs: number;
  atChecksMs: number;
  betweenMs: number;
  busySeconds: number[];
} {
  let atChecks = 0;
  let between = 0;
  const busy: number[] = [];
  for (let i = 1; i < s.samples.length; i++) {
    const d = s.samples[i]!.ticks - s.samples[i - 1]!.ticks;
    if (d <= 0) continue;
    const t0 = s.samples[i - 1]!.t;
    const t1 = s.samples[i]!.t;
    busy.push(Math.round(t1 / 1000));
    const nearCheck = s.checksAt.some((c) => c >= t0 - 1500 && c <= t1 + 1500);
    if (nearCheck) atChecks += d;
    else between += d;
  }
  const ms = (ticks: number) => (ticks * 1000) / CLK_TCK;
  return { totalMs: ms(atChecks + between), atChecksMs: ms(atChecks), betweenMs: ms(between), busySeconds: busy };
}
