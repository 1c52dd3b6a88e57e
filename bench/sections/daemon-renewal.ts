/**
 * Renewal inside the running daemon (no process start): a step-ca issuing
 * one-minute certificates (two minutes of lifetime with step-ca's backdating),
 * and a daemon told to renew at 51 % of the lifetime without jitter, so that
 * renewals follow each other about a second apart. Each renewal is measured
 * from the daemon's decision (`renewal_started`) to the new set being live
 * (`certificate_installed`), both stamped by the daemon itself.
 */
import { join } from 'node:path';
import { startStepCa } from '../../test/harness/stepca.js';
import { enroll, eventTime } from '../lib/agent.js';
import { Daemon } from '../lib/daemon.js';
import { readProc } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

export interface DaemonRenewalResult {
  /** first certificate, right after the daemon started (cold: first ACME use in the process) */
  firstMs: number;
  renewalsMs: number[];
  renewal: Summary;
  /** from the scheduled renewal moment to the daemon's decision: timer precision */
  lateness: Summary;
  rssAfterKb: number;
  hwmKb: number;
  failures: number;
}

export async function daemonRenewalSection(
  agentBin: string,
  baseDir: string,
  renewals: number,
): Promise<DaemonRenewalResult> {
  const ca = await startStepCa({ certDuration: '1m' });
  let daemon: Daemon | undefined;
  try {
    const a = await enroll(agentBin, join(baseDir, 'agent'), {
      caUrl: ca.url,
      fingerprint: ca.rootFingerprint,
      domain: 'localhost',
      listen: `127.0.0.1:${ca.acmeHttpPort}`,
      extraYaml: 'renewal:\n  at: 0.51\n  jitter: 0\n  method: acme\n',
    });
    daemon = new Daemon(agentBin, a.config, a.dir);
    const installs = await daemon.waitFor('certificate_installed', renewals + 1, 60_000 + renewals * 15_000);
    const starts = daemon.events('renewal_started');
    const durations = installs.map((inst, i) => eventTime(inst) - eventTime(starts[i]!));
    const lateness = installs
      .slice(0, -1)
      .map((inst, i) => eventTime(starts[i + 1]!) - Date.parse(String(inst.nextRenewal)));
    const proc = readProc(daemon.pid);
    return {
      firstMs: durations[0]!,
      renewalsMs: durations.slice(1),
      renewal: summarize(durations.slice(1)),
      lateness: summarize(lateness),
      rssAfterKb: proc?.rssKb ?? NaN,
      hwmKb: proc?.hwmKb ?? NaN,
      failures: daemon.events('renewal_failed').length,
    };
  } finally {
    await daemon?.stop();
    await ca.cleanup();
  }
}
