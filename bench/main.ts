/**
 * `make bench`: runs every benchmark side by side in one run and writes
 * BENCHMARKS.md (and bench/out/results.json with the raw numbers).
 *
 * Knobs (environment):
 *   BENCH_RUNS=5             one-shot issuance rounds per tool
 *   BENCH_LATENCY_RUNS=30    hyperfine runs per command
 *   BENCH_IDLE_SECONDS=300   idle window of the daemons
 *   BENCH_DAEMON_RENEWALS=10 renewals timed inside the running daemon
 *   BENCH_FLEET_SIZE=100     agents in the fleet benchmark
 *   BENCH_FLEET_ENROLL=4     `cert-agent enroll` processes at a time before the fleet starts
 *   BENCH_SIM_AGENTS=1000    agents in the schedule simulation
 *   BENCH_MULTI_RUNS=15      rounds of the several-certificates section
 *   BENCH_REKEY_RUNS=15      rounds of the renewal-over-the-CA's-API section
 *   BENCH_DNS01_RUNS=10      rounds of the dns-01 section
 *   BENCH_DNS01_LEGO_DEFAULTS=1 runs of lego with all its rfc2136 defaults (over a minute each)
 *   BENCH_ONLY=a,b           run only these sections (bundle, latency, oneshot,
 *                            daemon, idle, fleet, simulate, profile, multi, rekey, dns01)
 *   BENCH_OUT=BENCHMARKS.md  where the report goes (relative to the repo)
 *   BENCH_RENDER_ONLY=1      only re-render the report from bench/out/results.json
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startStepCa, stepCaBinary, type StepCa } from '../test/harness/stepca.js';
import { enroll } from './lib/agent.js';
import { machineLoad, run, versionOf } from './lib/proc.js';
import { render, type Results } from './report.js';
import { bundleSection } from './sections/bundle.js';
import { daemonRenewalSection } from './sections/daemon-renewal.js';
import { dns01Section } from './sections/dns01.js';
import { fleetSection } from './sections/fleet.js';
import { startIdle, type IdleHandle } from './sections/idle.js';
import { latencySection } from './sections/latency.js';
import { multiSection } from './sections/multi.js';
import { oneShotSection } from './sections/oneshot.js';
import { profileSection } from './sections/profile.js';
import { rekeySection } from './sections/rekey.js';
import { simulateSection } from './sections/simulate.js';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT = join(ROOT, 'bench/out');
const int = (name: string, def: number) => {
  const v = Number(process.env[name] ?? def);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer`);
  return v;
};
const knobs = {
  runs: Math.max(1, int('BENCH_RUNS', 5)),
  latencyRuns: Math.max(3, int('BENCH_LATENCY_RUNS', 30)),
  idleSeconds: Math.max(10, int('BENCH_IDLE_SECONDS', 300)),
  daemonRenewals: Math.max(1, int('BENCH_DAEMON_RENEWALS', 10)),
  fleetSize: Math.min(1000, Math.max(1, int('BENCH_FLEET_SIZE', 100))),
  fleetEnroll: Math.max(1, int('BENCH_FLEET_ENROLL', 4)),
  simAgents: Math.max(1, int('BENCH_SIM_AGENTS', 1000)),
  multiRuns: Math.max(3, int('BENCH_MULTI_RUNS', 15)),
  rekeyRuns: Math.max(1, int('BENCH_REKEY_RUNS', 15)),
  dns01Runs: Math.max(1, int('BENCH_DNS01_RUNS', 10)),
  dns01LegoDefaults: int('BENCH_DNS01_LEGO_DEFAULTS', 1),
};
const only = new Set(
  (process.env.BENCH_ONLY ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const want = (s: string) => only.size === 0 || only.has(s);

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function section<T>(name: string, fn: () => Promise<T>, errors: Record<string, string>): Promise<T | undefined> {
  log(`${name}…`);
  const started = Date.now();
  try {
    const r = await fn();
    log(`${name} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return r;
  } catch (err) {
    errors[name] = String(err instanceof Error ? (err.stack ?? err.message) : err).slice(0, 2000);
    log(`${name} FAILED: ${String(err).split('\n')[0]}`);
    return undefined;
  }
}

async function main(): Promise<void> {
  if (process.env.BENCH_RENDER_ONLY) {
    // Re-render the report from the last run's raw numbers.
    const results = JSON.parse(readFileSync(join(OUT, 'results.json'), 'utf8')) as Results;
    writeFileSync(join(ROOT, process.env.BENCH_OUT ?? 'BENCHMARKS.md'), render(results));
    return;
  }
  const begun = Date.now();
  // Not /tmp: as root the agent refuses a configuration below a directory others can write.
  const base = process.getuid?.() === 0 ? '/run/cert-agent-bench' : tmpdir();
  mkdirSync(base, { recursive: true, mode: 0o755 });
  const work = mkdtempSync(join(base, 'run-'));
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  process.once('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

  // The agent as it ships: the single file, in a directory with no node_modules.
  const binDir = join(work, 'bin');
  mkdirSync(binDir);
  const agentBin = join(binDir, 'cert-agent.cjs');
  copyFileSync(join(ROOT, 'bundle/out/cert-agent.cjs'), agentBin);
  const profBin = join(binDir, 'cert-agent.prof.mjs');
  copyFileSync(join(OUT, 'prof/cert-agent.cjs'), profBin);
  copyFileSync(join(OUT, 'prof/cert-agent.cjs.map'), `${profBin}.map`);

  const stepBinCandidate = process.env.STEP_BIN ?? '/usr/local/lib/cert-agent-test/bin/step';
  const stepBin = existsSync(stepBinCandidate) ? stepBinCandidate : undefined;
  const gitHead = (await run(['git', 'rev-parse', '--short', 'HEAD'], { cwd: ROOT })).stdout.trim();
  const gitDirty =
    (
      await run(['git', 'status', '--porcelain', '--untracked-files=no', '--', 'agent', 'bundle', 'package.json'], {
        cwd: ROOT,
      })
    ).stdout.trim() !== '';
  const versions: Record<string, string | undefined> = {
    'cert-agent': `${(await run([process.execPath, agentBin, '--version'], {})).stdout.trim()} (commit ${gitHead}${gitDirty ? ', with uncommitted changes in agent/' : ''})`,
    node: process.version,
    'runtime dependencies (bundled)': runtimeDeps(),
    esbuild: (JSON.parse(readFileSync(join(ROOT, 'node_modules/esbuild/package.json'), 'utf8')) as { version: string })
      .version,
    'step-ca': await versionOf([stepCaBinary(), '--version']),
    step: stepBin ? await versionOf([stepBin, 'version']) : undefined,
    lego: await debianVersion('lego', ['lego', '--version']),
    certbot: await debianVersion('certbot', ['certbot', '--version']),
    hyperfine: await debianVersion('hyperfine', ['hyperfine', '--version']),
    'GNU time': await debianVersion('time', ['/usr/bin/time', '--version']),
    openssl: await versionOf(['openssl', 'version']),
  };
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    kernel: release(),
    memGiB: Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024 / 1024),
    loadBefore: machineLoad(),
    loadAfter: '',
    debian: existsSync('/etc/debian_version') ? readFileSync('/etc/debian_version', 'utf8').trim() : 'n/a',
  };
  const errors: Record<string, string> = {};
  const results: Results = {
    startedAt: new Date().toISOString(),
    knobs,
    versions,
    machine,
    errors,
    sections: [...(only.size ? only : ['all'])],
  };

  if (want('bundle')) results.bundle = await section('bundle', () => bundleSection(ROOT, OUT, knobs.runs), errors);
  if (want('simulate'))
    results.simulation = await section('simulation', async () => simulateSection(knobs.simAgents), errors);

  const needCa = ['latency', 'oneshot', 'idle', 'profile', 'multi', 'rekey'].some(want);
  let ca: StepCa | undefined;
  let idle: IdleHandle | undefined;
  try {
    if (needCa) {
      ca = await startStepCa({ certDuration: '24h' });
      const rootFile = join(work, 'root.pem');
      writeFileSync(rootFile, ca.rootPem);
      // The idle window runs in the background while the other sections run:
      // CPU is counted per process, so their load does not show in it.
      if (want('idle') || want('latency')) {
        const c = ca;
        idle = await section(
          'idle daemons (start)',
          () => startIdle(c, agentBin, rootFile, stepBin, join(work, 'idle'), want('idle') ? knobs.idleSeconds : 10),
          errors,
        );
      }
      if (want('latency')) {
        let config = idle?.config;
        if (!config) {
          // The idle section failed: an agent of its own with a certificate.
          const a = await enroll(agentBin, join(work, 'latency'), {
            caUrl: ca.url,
            fingerprint: ca.rootFingerprint,
            domain: 'localhost',
            listen: `127.0.0.1:${ca.acmeHttpPort}`,
          });
          await run([process.execPath, agentBin, 'renew', '--config', a.config], { cwd: a.dir });
          config = a.config;
        }
        const cfg = config;
        const hf = (await run(['hyperfine', '--version'], {})).code === 0;
        results.latency = await section(
          'command latency',
          () => latencySection(agentBin, cfg, knobs.latencyRuns, hf),
          errors,
        );
      }
      if (want('oneshot')) {
        const c = ca;
        const o = await section(
          'one-shot issuance',
          () =>
            oneShotSection(
              {
                ca: c,
                rootFile,
                agentBin,
                ...(stepBin ? { stepBin } : {}),
                baseDir: join(work, 'oneshot'),
                rounds: knobs.runs,
              },
              { lego: Boolean(versions.lego), certbot: Boolean(versions.certbot) },
            ),
          errors,
        );
        if (o) {
          results.oneShot = o.tools;
          results.agentPhases = o.agentPhases;
        }
      }
      if (want('multi')) {
        const c = ca;
        results.multi = await section(
          'several certificates',
          () =>
            multiSection({
              ca: c,
              rootFile,
              agentBin,
              baseDir: join(work, 'multi'),
              rounds: knobs.multiRuns,
              lego: Boolean(versions.lego),
            }),
          errors,
        );
      }
      if (want('rekey')) {
        const c = ca;
        results.rekey = await section(
          'renewal over the CA API',
          () =>
            rekeySection({
              ca: c,
              rootFile,
              agentBin,
              ...(stepBin ? { stepBin } : {}),
              baseDir: join(work, 'rekey'),
              rounds: knobs.rekeyRuns,
              lego: Boolean(versions.lego),
            }),
          errors,
        );
      }
    }
    if (want('dns01'))
      // Its own bind9 and a step-ca that resolves through it.
      results.dns01 = await section(
        'dns-01 issuance',
        () =>
          dns01Section({
            agentBin,
            baseDir: join(work, 'dns01'),
            rounds: knobs.dns01Runs,
            lego: Boolean(versions.lego),
            legoDefaultRuns: knobs.dns01LegoDefaults,
          }),
        errors,
      );
    if (want('daemon'))
      results.daemonRenewal = await section(
        'renewal inside the daemon',
        () => daemonRenewalSection(agentBin, join(work, 'daemon'), knobs.daemonRenewals),
        errors,
      );
    if (want('fleet')) {
      const scripts = { proxy: join(OUT, 'lib/caproxy.mjs'), worker: join(OUT, 'lib/fleet-worker.mjs') };
      results.fleet = [];
      for (const mode of ['processes', 'instances'] as const) {
        const f = await section(
          `fleet of ${knobs.fleetSize} (${mode})`,
          () =>
            fleetSection(
              agentBin,
              scripts,
              mkdirp(join(work, `fleet-${mode}`)),
              knobs.fleetSize,
              mode,
              knobs.fleetEnroll,
            ),
          errors,
        );
        if (f) results.fleet.push(f);
      }
    }
    if (want('profile') && ca) {
      const c = ca;
      results.profile = await section(
        'CPU profiles',
        async () => {
          const a = await enroll(agentBin, join(work, 'profile'), {
            caUrl: c.url,
            fingerprint: c.rootFingerprint,
            domain: 'localhost',
            listen: `127.0.0.1:${c.acmeHttpPort}`,
            renewalMethod: 'acme',
          });
          return profileSection(
            profBin,
            OUT,
            [
              { name: 'cert-agent --version', args: ['--version'] },
              { name: 'cert-agent status', args: ['status', '--config', a.config] },
              { name: 'cert-agent renew --force', args: ['renew', '--force', '--config', a.config] },
            ],
            3,
          );
        },
        errors,
      );
    }
    if (idle) {
      const r = await section('idle daemons (finish)', () => idle!.done, errors);
      if (want('idle')) results.idle = r;
    }
  } finally {
    await ca?.cleanup();
  }

  machine.loadAfter = machineLoad();
  results.totalSeconds = Math.round((Date.now() - begun) / 1000);
  writeFileSync(join(OUT, 'results.json'), JSON.stringify(results, null, 2));
  const target = join(ROOT, process.env.BENCH_OUT ?? 'BENCHMARKS.md');
  writeFileSync(target, render(results));
  log(`wrote ${target} and bench/out/results.json in ${results.totalSeconds} s`);
  if (Object.keys(errors).length) {
    log(`sections with errors: ${Object.keys(errors).join(', ')}`);
    process.exitCode = 1;
  }
}

/** "certbot 2.1.0 (Debian package 2.1.0-4)": the package version too, since Debian builds may print "dev". */
async function debianVersion(pkg: string, argv: string[]): Promise<string | undefined> {
  const own = await versionOf(argv);
  if (!own) return undefined;
  const deb = (await run(['dpkg-query', '-W', '-f', '${Version}', pkg], {})).stdout.trim();
  return deb ? `${own} (Debian package ${pkg} ${deb})` : own;
}

/** "yaml 2.9.1, …": the installed versions of package.json's dependencies. */
function runtimeDeps(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  return Object.keys(pkg.dependencies ?? {})
    .map((d) => {
      try {
        return `${d} ${(JSON.parse(readFileSync(join(ROOT, 'node_modules', d, 'package.json'), 'utf8')) as { version: string }).version}`;
      } catch {
        return `${d} (not installed)`;
      }
    })
    .join(', ');
}

function mkdirp(p: string): string {
  mkdirSync(p, { recursive: true });
  return p;
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
