/** Renders the results of one `make bench` run as BENCHMARKS.md. */
import type { BundleResult } from './sections/bundle.js';
import type { DaemonRenewalResult } from './sections/daemon-renewal.js';
import type { FleetResult } from './sections/fleet.js';
import { splitCpu, type IdleResult } from './sections/idle.js';
import type { LatencyResult } from './sections/latency.js';
import type { ToolRuns } from './sections/oneshot.js';
import type { ProfileRow } from './sections/profile.js';
import type { SimRow } from './sections/simulate.js';
import { cell, median, summarize, type Summary } from './lib/stats.js';

export interface Results {
  startedAt: string;
  totalSeconds?: number;
  knobs: Record<string, number>;
  versions: Record<string, string | undefined>;
  machine: { cpu: string; cores: number; kernel: string; memGiB: number; loadBefore: string; loadAfter: string; debian: string };
  errors: Record<string, string>;
  sections: string[];
  bundle?: BundleResult;
  latency?: LatencyResult;
  oneShot?: ToolRuns[];
  daemonRenewal?: DaemonRenewalResult;
  idle?: IdleResult;
  fleet?: FleetResult;
  simulation?: SimRow[];
  profile?: ProfileRow[];
}

const MB = 1e6;
const MiB = 1024 * 1024;
const kbToMiB = (kb: number) => kb / 1024;
const mibSummary = (s: Summary): Summary => ({ n: s.n, median: s.median / 1024, min: s.min / 1024, max: s.max / 1024, p99: s.p99 / 1024 });
const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
const kib = (b: number) => `${fmt(b / 1024, 0)} KiB`;

interface Target {
  name: string;
  target: string;
  measured: string;
  met: boolean | undefined;
  margin: string;
}

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function verdict(met: boolean | undefined): string {
  return met === undefined ? 'not measured' : met ? '**met**' : '**missed**';
}

function byTool(r: Results, name: string): ToolRuns | undefined {
  return r.oneShot?.find((t) => t.tool.startsWith(name));
}

const wall = (runs: { wallMs: number }[]) => summarize(runs.map((x) => x.wallMs));
const rss = (runs: { maxRssKb: number }[]) => mibSummary(summarize(runs.map((x) => x.maxRssKb)));

function targets(r: Results): Target[] {
  const out: Target[] = [];
  const agent = byTool(r, 'cert-agent');
  const lego = byTool(r, 'lego');
  const certbot = byTool(r, 'certbot');
  if (agent) {
    const a = median(agent.repeat.map((x) => x.wallMs));
    const af = median(agent.first.map((x) => x.wallMs));
    if (lego) {
      const l = median(lego.repeat.map((x) => x.wallMs));
      const lf = median(lego.first.map((x) => x.wallMs));
      const q = a / l;
      out.push({ name: 'One-shot issuance vs lego', target: '≤ 1.5× lego', measured: `${fmt(q, 2)}× (${fmt(a)} ms vs ${fmt(l)} ms; first issuance with a new account: ${fmt(af / lf, 2)}×)`, met: q <= 1.5, margin: q <= 1.5 ? `${fmt((1 - q / 1.5) * 100)} % under` : `${fmt(q / 1.5, 2)}× over the target (${fmt(a - 1.5 * l)} ms too slow)` });
    }
    if (certbot) {
      const c = median(certbot.repeat.map((x) => x.wallMs));
      const cf = median(certbot.first.map((x) => x.wallMs));
      const q = a / c;
      out.push({ name: 'One-shot issuance vs certbot', target: '≤ 0.1× certbot', measured: `${fmt(q, 3)}× (${fmt(a)} ms vs ${fmt(c)} ms; first: ${fmt(af / cf, 3)}×)`, met: q <= 0.1, margin: q <= 0.1 ? `${fmt((1 - q / 0.1) * 100)} % under` : `${fmt(q / 0.1, 2)}× over the target` });
    }
  }
  if (r.daemonRenewal && lego) {
    const d = r.daemonRenewal.renewal.median;
    const l = median(lego.repeat.map((x) => x.wallMs));
    out.push({ name: 'Renewal inside the daemon', target: '< lego one-shot', measured: `${fmt(d)} ms vs lego ${fmt(l)} ms (${fmt(d / l, 2)}×)`, met: d < l, margin: d < l ? `${fmt((1 - d / l) * 100)} % faster` : `${fmt(d / l, 2)}× lego` });
  }
  const agentIdle = r.idle?.series.find((s) => s.name === 'cert-agent run');
  if (agentIdle) {
    const maxRss = Math.max(...agentIdle.samples.map((s) => s.rssKb)) * 1024;
    out.push({ name: 'Idle daemon memory', target: '≤ 50 MB resident (50·10⁶ B = 47.7 MiB)', measured: `max ${fmt(maxRss / MiB, 1)} MiB over ${r.idle!.seconds} s (VmHWM incl. the issuance at start: ${fmt(agentIdle.hwmKb / 1024, 1)} MiB)`, met: maxRss <= 50 * MB, margin: maxRss <= 50 * MB ? `${fmt((50 * MB - maxRss) / MiB, 1)} MiB to spare` : `${fmt((maxRss - 50 * MB) / MiB, 1)} MiB over (${fmt(maxRss / (50 * MB), 2)}×)` });
    const cpu = splitCpu(agentIdle);
    out.push({ name: 'Idle daemon CPU between checks', target: 'none measurable (0 ticks of 10 ms)', measured: `${fmt(cpu.betweenMs)} ms between checks, ${fmt(cpu.atChecksMs)} ms at ${agentIdle.checksAt.length} check(s), over ${r.idle!.seconds} s`, met: cpu.betweenMs === 0, margin: cpu.betweenMs === 0 ? '0 ticks' : `${fmt(cpu.betweenMs / 10)} tick(s) counted` });
  }
  const lat = r.latency?.rows;
  if (lat) {
    const node = lat.find((x) => x.name === 'node -e 0')!.wallMs.median;
    const st = lat.find((x) => x.name === 'cert-agent status')!.wallMs.median;
    const q = st / node;
    out.push({ name: '`cert-agent status` latency', target: '≤ 2× `node -e 0`', measured: `${fmt(q, 2)}× (${fmt(st)} ms vs ${fmt(node)} ms)`, met: q <= 2, margin: q <= 2 ? `${fmt((1 - q / 2) * 100)} % under` : `${fmt(q / 2, 2)}× over (${fmt(st - 2 * node)} ms too slow)` });
  }
  if (r.bundle) {
    const b = r.bundle.bytes;
    out.push({ name: 'Bundle size (minified)', target: '≤ 1.5 MB (stretch 1 MB), 10⁶ B', measured: `${fmt(b / MB, 3)} MB (${kib(b)}); gzip ${fmt(r.bundle.gzipBytes / MB, 3)} MB`, met: b <= 1.5 * MB, margin: b <= MB ? `stretch met: ${fmt((MB - b) / 1000)} kB under 1 MB` : b <= 1.5 * MB ? `${fmt((1.5 * MB - b) / 1000)} kB under 1.5 MB; stretch missed by ${fmt((b - MB) / 1000)} kB` : `${fmt((b - 1.5 * MB) / 1000)} kB over` });
  }
  if (r.fleet) {
    const f = r.fleet;
    const ok = f.certified === f.size && f.renewed === f.certified && f.enrollFailures.length === 0 && f.renewalFailures === 0;
    const fast = f.allCertifiedMs < 30_000;
    out.push({ name: `Fleet of ${f.size}`, target: 'all certified in < 30 s, no failures', measured: `${f.certified}/${f.size} certified in ${fmt(f.allCertifiedMs / 1000, 1)} s; ${f.renewed}/${f.certified} renewed; ${f.enrollFailures.length + f.renewalFailures} failures`, met: ok && fast, margin: ok && fast ? `${fmt(30 - f.allCertifiedMs / 1000, 1)} s to spare` : !ok ? 'failures' : `${fmt(f.allCertifiedMs / 1000 - 30, 1)} s over (${fmt(f.allCertifiedMs / 30_000, 2)}×)` });
  }
  return out;
}

export function render(r: Results): string {
  const s: string[] = [];
  s.push('# cert-agent benchmarks', '');
  s.push(`Generated by \`make bench\` on ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC in ${r.totalSeconds ?? '?'} s${r.sections[0] !== 'all' ? ` (sections: ${r.sections.join(', ')})` : ''}. Every number below comes from this one run; tools are compared side by side, interleaved, against the same local step-ca. Ratios are what counts; absolute times are context for this machine only.`, '');
  s.push(`**Machine:** ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memGiB} GiB, Linux ${r.machine.kernel}, Debian ${r.machine.debian}. Load average ${r.machine.loadBefore} at the start and ${r.machine.loadAfter} at the end: the machine is shared, so spreads are wide and medians move from run to run; compare ratios within one run.`, '');

  const t = targets(r);
  if (t.length) {
    s.push('## Targets', '');
    s.push(table(['target', 'goal', 'measured (median)', 'verdict', 'by how much'], t.map((x) => [x.name, x.target, x.measured, verdict(x.met), x.margin])), '');
  }

  if (r.oneShot) {
    s.push('## One-shot issuance', '');
    s.push(`Each tool as a whole process gets one ECDSA P-256 certificate for \`localhost\` over http-01 from the same step-ca (validation port ${'redirected with `--acme-http-port`'}; each tool binds it only while it validates). ${r.knobs.runs} rounds; every round gives each tool a fresh directory and runs it twice: **first** registers an ACME account and issues, **repeat** issues again with the account it has (what a renewal costs). Wall time is measured by the parent from spawn to exit, peak RSS by GNU time (\`%M\`). Cells: median (min–max).`, '');
    const rows = r.oneShot.map((x) => [x.tool, x.protocol, x.first.length ? cell(wall(x.first), 'ms') : '—', cell(wall(x.repeat), 'ms'), x.first.length ? cell(rss(x.first), 'MiB', 1) : '—', cell(rss(x.repeat), 'MiB', 1), String(x.failures.length)]);
    s.push(table(['tool', 'protocol', 'wall, first', 'wall, repeat', 'peak RSS, first', 'peak RSS, repeat', 'failures'], rows), '');
    const agent = byTool(r, 'cert-agent');
    if (agent) {
      const a = median(agent.repeat.map((x) => x.wallMs));
      s.push('Ratios (repeat, medians): ' + r.oneShot.filter((x) => x !== agent).map((x) => `cert-agent / ${x.tool.split(' ').slice(0, x.tool.startsWith('step') ? 3 : 1).join(' ')} = ${fmt(a / median(x.repeat.map((y) => y.wallMs)), 2)}×`).join('; ') + '.', '');
    }
    s.push('Notes: cert-agent\'s trust bootstrap (fetching and pinning the root) happens in `enroll`, which is not timed; its `renew --force` verifies the chain against the pinned root, checks the key and names, and installs the set atomically with the previous set kept, which the other tools do not do. `step ca certificate` creates a new ACME account on every run, so its first and repeat runs are the same work; it also waits in whole seconds while polling. `step ca renew` is not ACME: it renews over mutual TLS with the current certificate (no challenge), shown for context only.', '');
    const fails = r.oneShot.flatMap((x) => x.failures.map((f) => `${x.tool}: ${f}`));
    if (fails.length) s.push('Failures:', '', ...fails.map((f) => `- ${f}`), '');
  }

  if (r.daemonRenewal) {
    const d = r.daemonRenewal;
    s.push('## Renewal inside the running daemon', '');
    s.push(`\`cert-agent run\` against a step-ca issuing 1-minute certificates (2 minutes of lifetime with step-ca's one minute of backdating), configured to renew at 51 % of the lifetime without jitter, so renewals follow each other about a second apart; no process start. Each renewal is timed from the daemon's decision (\`renewal_started\`) to the new set being live (\`certificate_installed\`), both stamped by the daemon: new key, ACME order, http-01, finalize, download, chain and key checks, atomic install.`, '');
    s.push(table(['', 'value'], [
      [`renewal, ${d.renewal.n} in a row`, `${cell(d.renewal, 'ms')}; p99 ${fmt(d.renewal.p99)} ms`],
      ['first certificate after daemon start (cold: first ACME use in the process, account registration)', `${fmt(d.firstMs)} ms`],
      ['scheduled moment → decision (timer precision)', cell(d.lateness, 'ms')],
      ['daemon RSS after the renewals (VmRSS / VmHWM)', `${fmt(kbToMiB(d.rssAfterKb), 1)} MiB / ${fmt(kbToMiB(d.hwmKb), 1)} MiB`],
      ['renewal failures', String(d.failures)],
    ]), '');
  }

  if (r.idle) {
    s.push('## Idle daemon', '');
    s.push(`Both daemons hold a fresh 24-hour certificate from the same step-ca and are sampled once a second for ${r.idle.seconds} s (resident memory from /proc/<pid>/status, CPU from /proc/<pid>/stat in 10 ms ticks) after a 5 s settling pause. The other benchmarks run meanwhile; CPU and memory are per process, so they do not show here. cert-agent uses its default check schedule (\`*/5 * * * *\`); each check is logged, so CPU is split into "at a check" (±1.5 s) and "between checks".`, '');
    const rows = r.idle.series.map((x) => {
      const rssS = summarize(x.samples.map((y) => y.rssKb));
      const cpu = splitCpu(x);
      const windowS = (x.samples[x.samples.length - 1]!.t - x.samples[0]!.t) / 1000;
      return [x.name, `${fmt(kbToMiB(x.samples[0]!.rssKb), 1)} → ${fmt(kbToMiB(x.samples[x.samples.length - 1]!.rssKb), 1)} MiB (max ${fmt(kbToMiB(rssS.max), 1)})`, `${fmt(kbToMiB(x.hwmKb), 1)} MiB`, `${fmt(cpu.totalMs)} ms (${fmt((cpu.totalMs / 1000 / windowS) * 100, 3)} %)`, x.name.startsWith('cert-agent') ? `${x.checksAt.length}` : '—', x.name.startsWith('cert-agent') ? `${fmt(cpu.atChecksMs)} ms` : '—', x.name.startsWith('cert-agent') ? `${fmt(cpu.betweenMs)} ms` : `${fmt(cpu.totalMs)} ms`, cpu.busySeconds.length ? cpu.busySeconds.slice(0, 12).join(', ') + (cpu.busySeconds.length > 12 ? ', …' : '') : 'none'];
    });
    s.push(table(['daemon', 'RSS start → end', 'VmHWM (peak since start)', 'CPU in window', 'checks', 'CPU at checks', 'CPU between checks', 'seconds with CPU ticks'], rows), '');
  }

  if (r.latency) {
    s.push('## Command latency', '');
    s.push(`Measured with ${r.latency.tool}, all commands in the same run; peak RSS from 5 runs under GNU time. \`status\` reads a live certificate issued by the local step-ca (daemon running).`, '');
    const node = r.latency.rows.find((x) => x.name === 'node -e 0')!.wallMs.median;
    s.push(table(['command', 'wall', '× node -e 0', 'peak RSS', 'exit'], r.latency.rows.map((x) => [x.name, cell(x.wallMs, 'ms', 1), fmt(x.wallMs.median / node, 2), cell(mibSummary(x.rssKb), 'MiB', 1), String(x.exitCode)])), '');
  }

  if (r.profile) {
    s.push('## Where start-up time goes', '');
    s.push('`node --cpu-prof` on a copy of the bundle built with the same options plus a source map; self time (CPU, idle excluded) summed per dependency, median of 3 runs. `(program)` is V8/Node work outside JavaScript frames — mostly reading, parsing and compiling the bundle; `(garbage collector)` is GC. Wall times include the profiler\'s overhead.', '');
    for (const p of r.profile) {
      s.push(`**${p.command}** — wall ${fmt(p.wallMs)} ms, sampled CPU ${fmt(p.cpuMs)} ms:`, '');
      s.push(table(['where', 'self ms', 'share'], p.buckets.filter(([, ms]) => ms >= 0.5).slice(0, 12).map(([k, ms]) => [k, fmt(ms, 1), `${fmt((ms / p.cpuMs) * 100)} %`])), '');
    }
  }

  if (r.bundle) {
    const b = r.bundle;
    s.push('## Bundle', '');
    s.push(`\`bundle/out/cert-agent.mjs\`: **${b.bytes.toLocaleString('en')} bytes** minified (${fmt(b.bytes / MB, 3)} MB), **${b.gzipBytes.toLocaleString('en')} bytes** gzipped (-9), ${b.brotliBytes.toLocaleString('en')} bytes brotli (q11). Breakdown by package from esbuild's metafile (\`bundle/out/meta.json\`, bytes each input contributes to the output):`, '');
    s.push(table(['package', 'bytes in bundle', 'share'], b.byPackage.map(([k, v]) => [k, v.toLocaleString('en'), `${fmt((v / b.bytes) * 100, 1)} %`])), '');
    s.push(`Each runtime dependency bundled **alone** with the same options, loaded by a bare \`node\` (${r.knobs.runs} runs, interleaved): what it costs at start-up on top of \`node -e 0\` (${cell(b.baseline.wallMs, 'ms')}, ${cell(mibSummary(b.baseline.rssKb), 'MiB', 1)}). The costs do not add up exactly (shared code such as axios inside acme-client).`, '');
    s.push(table(['dependency', 'bytes alone', 'load wall', '+ wall over node -e 0', 'peak RSS', '+ RSS'], b.deps.map((d) => [d.name, d.bytes.toLocaleString('en'), cell(d.wallMs, 'ms'), `${fmt(d.wallMs.median - b.baseline.wallMs.median)} ms`, cell(mibSummary(d.rssKb), 'MiB', 1), `${fmt(kbToMiB(d.rssKb.median - b.baseline.rssKb.median), 1)} MiB`])), '');
  }

  if (r.fleet) {
    const f = r.fleet;
    s.push(`## Fleet: ${f.size} agents against one step-ca`, '');
    s.push(`${f.size} agents, each a separate \`cert-agent enroll\` then \`cert-agent run\` process with its own directories, ACME account, account key and certificate key, and its own name: an IP identifier 127.10.x.y with its own standalone http-01 listener on that address (like ${f.size} containers, each with its own address and port 80). All start at the same moment. step-ca issues 2-minute certificates (3 minutes of lifetime with backdating); the agents use the default schedule (renew at 66 % of the lifetime, up to 5 % earlier at random per certificate), so each renews about a minute after it was certified. In front of the CA, a counting HTTPS proxy (its own process; TLS certificate from the CA's intermediate, so the agents' pinning accepts it; Host header passed through) records every request and how many are in flight at the CA at once.`, '');
    s.push(table(['', 'value'], [
      ['certified / renewed', `${f.certified}/${f.size} / ${f.renewed}/${f.certified}`],
      ['failures (enroll, renewal attempts, placeholders)', `${f.enrollFailures.length}, ${f.renewalFailures}, ${f.placeholders}`],
      ['**time to all certified** (common start → last first certificate)', `**${fmt(f.allCertifiedMs / 1000, 1)} s**`],
      ['per agent: start → own first certificate, p50 / p99', `${fmt(f.timeToCert.median / 1000, 1)} s / ${fmt(f.timeToCert.p99 / 1000, 1)} s`],
      ['per agent: `enroll` process (trust bootstrap), p50 / p99', `${fmt(f.enrollMs.median)} ms / ${fmt(f.enrollMs.p99)} ms`],
      ['per agent: first issuance inside the daemon, p50 / p99', `${fmt(f.issueMs.median)} ms / ${fmt(f.issueMs.p99)} ms`],
      ['per agent: renewal inside the daemon, p50 / p99', `${fmt(f.renewMs.median)} ms / ${fmt(f.renewMs.p99)} ms`],
      ['renewal decisions spread over (first → last)', `${fmt(f.renewalWindowMs / 1000, 1)} s`],
      ['agents\' RSS once certified: per agent median (min–max); sum', `${cell(mibSummary(f.perAgentRssKb), 'MiB', 1)}; ${fmt(f.fleetRssKb / 1024 / 1024, 2)} GiB`],
    ]), '');
    s.push(table(['at the CA', 'enrollment phase', 'renewal phase'], [
      ['requests', f.enrollPhase.requests, f.renewPhase.requests],
      ['**peak requests in flight at once**', `**${f.enrollPhase.peakInFlight}**`, `**${f.renewPhase.peakInFlight}**`],
      ['peak open TLS connections', f.enrollPhase.peakConnections, f.renewPhase.peakConnections],
      ['peak requests started in one second', f.enrollPhase.peakRequestsPerSecond, f.renewPhase.peakRequestsPerSecond],
      ['CA response time p50 / p99 (at the proxy)', `${fmt(f.enrollPhase.caLatency.median)} / ${fmt(f.enrollPhase.caLatency.p99)} ms`, `${fmt(f.renewPhase.caLatency.median)} / ${fmt(f.renewPhase.caLatency.p99)} ms`],
      ['non-2xx answers / proxy errors', `${f.enrollPhase.non2xx} / ${f.enrollPhase.errors}`, `${f.renewPhase.non2xx} / ${f.renewPhase.errors}`],
      ['step-ca CPU time', `${fmt(f.caCpuMs.enroll / 1000, 1)} s`, `${fmt(f.caCpuMs.renew / 1000, 1)} s`],
    ]), '');
    s.push(`Requests by kind (enrollment phase): ${Object.entries(f.enrollPhase.byKind).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}. Non-2xx answers include the expected ones (e.g. step-ca's 201 counts as 2xx; a 4xx would be a real rejection).`, '');
    if (f.enrollFailures.length) s.push('Enrollment failures:', '', ...f.enrollFailures.slice(0, 10).map((x) => `- ${x}`), '');
  }

  if (r.simulation) {
    s.push(`## Simulation: ${r.knobs.simAgents} agents, 24-hour certificates`, '');
    s.push('Computed with the agent\'s own `nextRenewal` and `randomForSerial` (agent/schedule.ts): each certificate lives 24 h plus step-ca\'s one minute of backdating, renewal at 66 % of the lifetime minus `jitter` × a random fixed per serial; each agent renews exactly at that moment (the daemon arms a timer for it) and gets a new serial, hence a new random. Counted: renewals (first issuance excluded) per wall-clock minute and second.', '');
    s.push(table(['scenario', 'jitter', 'simulated', 'renewals', 'max per minute', 'max per second', 'busiest minute at'], r.simulation.map((x) => [x.scenario, x.jitter === 0 ? '0 (none)' : `${x.jitter} (default)`, `${x.hours} h`, x.renewals, `**${x.maxPerMinute}**`, x.maxPerSecond, `${fmt(x.busiestAtH, 1)} h`])), '');
    const once = r.simulation.filter((x) => x.scenario.startsWith('enrolled') && x.hours === 24);
    const no = once.find((x) => x.jitter === 0);
    const yes = once.find((x) => x.jitter > 0);
    if (no && yes) s.push(`With the default jitter, a fleet enrolled at once renews at most ${yes.maxPerMinute} times per minute instead of ${no.maxPerMinute} (${fmt(no.maxPerMinute / Math.max(1, yes.maxPerMinute), 0)}× less peak load): 5 % of a 24 h lifetime spreads the renewals over 72 minutes, and a fresh random per serial keeps spreading them at every later renewal.`, '');
  }

  const errs = Object.entries(r.errors);
  if (errs.length) {
    s.push('## Sections that failed', '');
    for (const [k, v] of errs) s.push(`**${k}**:`, '', '```', v, '```', '');
  }

  s.push('## Versions', '');
  s.push(table(['component', 'version'], Object.entries(r.versions).map(([k, v]) => [k, v ?? 'not installed (section skipped)'])), '');
  s.push('## Reproduce', '');
  s.push('```sh', 'make bench        # installs peers (make deps-bench), builds the bundle, runs everything (~10 min), writes BENCHMARKS.md', 'BENCH_IDLE_SECONDS=30 BENCH_FLEET_SIZE=20 make bench     # a quick run', 'BENCH_ONLY=fleet,simulate make bench                      # some sections only', '```', '');
  s.push(`Knobs used in this run: ${Object.entries(r.knobs).map(([k, v]) => `${k}=${v}`).join(', ')} (environment: BENCH_RUNS, BENCH_LATENCY_RUNS, BENCH_IDLE_SECONDS, BENCH_DAEMON_RENEWALS, BENCH_FLEET_SIZE, BENCH_SIM_AGENTS, BENCH_ONLY). Raw numbers of the run: \`bench/out/results.json\`. Peers: \`make deps-bench\` installs Debian's lego, certbot, hyperfine and GNU time, and builds the step CLI from the Go module proxy (\`bench/install-peers.sh\`); step-ca is the test harness's (\`make deps-stepca\`). Sources: \`bench/\`.`, '');
  return s.join('\n');
}
