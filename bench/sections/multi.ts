/**
 * Several certificates in one agent against one: two agents from the same
 * local step-ca, one with a single certificate and one with ten, each
 * certificate its own IP identifier (127.30.0.1–10 and 127.30.1.1, so each
 * has its own http-01 listener; only `localhost` resolves on this machine).
 * In each round, in a random order: a timer-mode `cert-agent check` of
 * each agent (every certificate live, none due), a `cert-agent renew
 * --force` of each (every certificate renewed in one pass), and `lego run`
 * with its account already there, as the one-shot section times it. Then
 * both daemons (`cert-agent run`) side by side, sampled once their first
 * checks are done.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StepCa } from '../../test/harness/stepca.js';
import { enroll, type AgentDirs } from '../lib/agent.js';
import { Daemon } from '../lib/daemon.js';
import { cleanEnv, lastLines, readProc, run, sleep, timed } from '../lib/proc.js';
import { shuffled } from '../lib/stats.js';
import { legoRun } from './oneshot.js';

/** Per command: one value per successful run. */
export interface MultiRuns {
  wallMs: number[];
  cpuMs: number[];
  rssKb: number[];
}

export interface MultiDaemon {
  /** VmRSS once a second over the window (KiB) */
  rssKb: number[];
  /** VmHWM at the end of the window: the daemon's peak since it started (its passes run in child processes) */
  hwmKb: number;
}

export interface MultiResult {
  /** certificates in the larger agent */
  many: number;
  rounds: number;
  check: { one: MultiRuns; many: MultiRuns };
  renew: { one: MultiRuns; many: MultiRuns };
  /** `lego run` (repeat: its account exists), one certificate per run; absent without lego */
  lego?: MultiRuns;
  daemon?: { one: MultiDaemon; many: MultiDaemon; settleSeconds: number; windowSeconds: number };
  failures: string[];
}

export interface MultiContext {
  ca: StepCa;
  rootFile: string;
  agentBin: string;
  baseDir: string;
  rounds: number;
  lego: boolean;
}

const MANY = 10;
const SETTLE_S = 5;
const WINDOW_S = 5;

export async function multiSection(ctx: MultiContext): Promise<MultiResult> {
  const one = await agentWith(ctx, join(ctx.baseDir, 'one'), ['127.30.1.1']);
  const many = await agentWith(
    ctx,
    join(ctx.baseDir, 'many'),
    Array.from({ length: MANY }, (_, k) => `127.30.0.${k + 1}`),
  );
  const result: MultiResult = {
    many: MANY,
    rounds: ctx.rounds,
    check: { one: runs(), many: runs() },
    renew: { one: runs(), many: runs() },
    failures: [],
  };
  const agentCmd = (a: AgentDirs, ...args: string[]) => [process.execPath, ctx.agentBin, ...args, '--config', a.config];
  const jobs: { label: string; argv: string[]; env: Record<string, string>; cwd: string; into: MultiRuns }[] = [
    { label: 'check, 1', argv: agentCmd(one, 'check'), env: cleanEnv(), cwd: one.dir, into: result.check.one },
    { label: `check, ${MANY}`, argv: agentCmd(many, 'check'), env: cleanEnv(), cwd: many.dir, into: result.check.many },
    {
      label: 'renew --force, 1',
      argv: agentCmd(one, 'renew', '--force'),
      env: cleanEnv(),
      cwd: one.dir,
      into: result.renew.one,
    },
    {
      label: `renew --force, ${MANY}`,
      argv: agentCmd(many, 'renew', '--force'),
      env: cleanEnv(),
      cwd: many.dir,
      into: result.renew.many,
    },
  ];
  if (ctx.lego) {
    const dir = join(ctx.baseDir, 'lego');
    mkdirSync(dir, { recursive: true });
    const lego = legoRun(ctx.ca, ctx.rootFile, dir);
    // The first run registers lego's account; the timed runs are repeats, as in the one-shot section.
    const first = await run(lego.argv, { env: lego.env, cwd: dir });
    if (first.code !== 0) result.failures.push(`lego, first run: exit ${first.code}: ${lastLines(first)}`);
    else {
      result.lego = runs();
      jobs.push({ label: 'lego run', argv: lego.argv, env: lego.env, cwd: dir, into: result.lego });
    }
  }
  for (let round = 0; round < ctx.rounds; round++) {
    for (const job of shuffled(jobs)) {
      const t = await timed(job.argv, { env: job.env, cwd: job.cwd });
      if (t.code === 0) {
        job.into.wallMs.push(t.wallMs);
        job.into.cpuMs.push(t.cpuMs);
        job.into.rssKb.push(t.maxRssKb);
      } else result.failures.push(`${job.label}, round ${round}: exit ${t.code}: ${lastLines(t)}`);
    }
  }
  const daemons = await idleDaemons(ctx.agentBin, one, many);
  return { ...result, daemon: daemons };
}

/** An agent whose certificates (one per address) are enrolled and issued. */
async function agentWith(ctx: MultiContext, dir: string, addresses: string[]): Promise<AgentDirs> {
  let a: AgentDirs | undefined;
  for (const [k, addr] of addresses.entries()) {
    a = await enroll(ctx.agentBin, dir, {
      caUrl: ctx.ca.url,
      fingerprint: ctx.ca.rootFingerprint,
      domain: addr,
      listen: `${addr}:${ctx.ca.acmeHttpPort}`,
      name: `c${k}`,
      certDir: join(dir, 'certs', `c${k}`),
      renewalMethod: 'acme',
    });
  }
  const agent = a!;
  const issued = await run([process.execPath, ctx.agentBin, 'renew', '--config', agent.config], {
    env: cleanEnv(),
    cwd: agent.dir,
  });
  if (issued.code !== 0) throw new Error(`first renew of ${dir} failed (${issued.code}): ${lastLines(issued)}`);
  return agent;
}

/** Both daemons side by side: started, their first checks done (every certificate not due), settled, sampled. */
async function idleDaemons(bin: string, one: AgentDirs, many: AgentDirs): Promise<MultiResult['daemon']> {
  const d1 = new Daemon(bin, one.config, one.dir);
  const d10 = new Daemon(bin, many.config, many.dir);
  try {
    await Promise.all([d1.waitFor('renewal_not_due', 1, 60_000), d10.waitFor('renewal_not_due', MANY, 60_000)]);
    await sleep(SETTLE_S * 1000);
    const out = { one: { rssKb: [] as number[], hwmKb: NaN }, many: { rssKb: [] as number[], hwmKb: NaN } };
    for (let i = 0; i <= WINDOW_S; i++) {
      for (const [d, into] of [
        [d1, out.one],
        [d10, out.many],
      ] as const) {
        const p = readProc(d.pid);
        if (!p) throw new Error(`daemon ${d.pid} gone: ${d.stderr.trim().split('\n').slice(-2).join(' / ')}`);
        into.rssKb.push(p.rssKb);
        into.hwmKb = p.hwmKb;
      }
      if (i < WINDOW_S) await sleep(1000);
    }
    return { ...out, settleSeconds: SETTLE_S, windowSeconds: WINDOW_S };
  } finally {
    await Promise.all([d1.stop(), d10.stop()]);
  }
}

const runs = (): MultiRuns => ({ wallMs: [], cpuMs: [], rssKb: [] });
