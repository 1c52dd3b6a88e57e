/** The report's part on renewal over step-ca's own API (bench/sections/rekey.ts): its targets and its section. */
import { close, fmt, table, type Target } from './lib/markdown.js';
import { cell, median, summarize } from './lib/stats.js';
import type { RekeyMarks, RekeyResult, RekeyToolKey, RekeyRuns } from './sections/rekey.js';

const med = (xs: number[]) => median(xs.filter(Number.isFinite));
const runsOf = (r: RekeyResult, key: RekeyToolKey): RekeyRuns | undefined =>
  r.tools.find((t) => t.key === key && t.runs.wallMs.length)?.runs;

/** The goals: `cert-agent renew --force` by rekey ≤ 1.0× lego's ACME renewal, ≤ 2× `step ca renew`. */
const GOALS = [
  ['lego', '`lego renew`', 1],
  ['step-renew', '`step ca renew`', 2],
] as const;

/** Each goal whose tools both ran: the agent's and the other's medians, and their ratio. */
function ratios(r: RekeyResult) {
  const agent = runsOf(r, 'agent-step');
  return GOALS.flatMap(([key, label, limit]) => {
    const other = runsOf(r, key);
    if (!agent || !other) return [];
    const [a, o] = [med(agent.wallMs), med(other.wallMs)];
    return [{ label, limit, a, o, q: a / o, cpu: [med(agent.cpuMs), med(other.cpuMs)] as const }];
  });
}

export function rekeyTargets(r: RekeyResult | undefined): Target[] {
  if (!r) return [];
  return ratios(r).map(({ label, limit, a, o, q, cpu }) => ({
    name: `Renewal over the CA's API (rekey) vs ${label}`,
    target: `≤ ${fmt(limit, 1)}× ${label}, whole processes`,
    measured: `${fmt(q, 2)}× (${fmt(a)} ms vs ${fmt(o)} ms; CPU ${fmt(cpu[0])} vs ${fmt(cpu[1])} ms)`,
    met: q <= limit,
    margin:
      (q <= limit
        ? `${fmt((1 - q / limit) * 100)} % under`
        : `${fmt(q / limit, 2)}× over the target (${fmt(a - limit * o)} ms too slow)`) + close(q / limit),
  }));
}

/** nodeMs: a bare `node -e 0` from this run's command latency section, when it ran. */
export function renderRekey(r: RekeyResult, nodeMs: number | undefined): string[] {
  const s: string[] = ["## Renewal over step-ca's own API: `cert-agent renew --force` by rekey", ''];
  s.push(
    `One agent enrolled with the local step-ca and \`renewal.method: auto\`: its certificate (ECDSA P-256 for \`localhost\`) is first issued over ACME, so every \`cert-agent renew --force\` after that renews it by \`POST /1.0/rekey\` over mutual TLS (a new key, the current certificate as client certificate, no challenge). Beside it, in the same rounds: the same agent with \`renewal.method: acme\` (its ACME order, for the saving), \`lego renew --no-random-sleep\` with its account and certificate from a first \`lego run\` (an ACME order with a new key; without a terminal lego would first sleep up to 8 minutes at random), and \`step ca renew\` / \`step ca rekey\` of a certificate that \`step ca certificate\` got over ACME (\`--force\`, \`--ca-url\`, \`--root\`; \`renew\` keeps the key, \`rekey\` makes a new one). One untimed round, then ${r.rounds} round${r.rounds === 1 ? '' : 's'}, each running every tool once as a whole process in a random order; wall time from the parent's spawn to exit, CPU (in steps of 10 ms) and peak RSS from GNU time. Every run must leave a new certificate; every run of the rekey agent must also have gone by the API — its state file's \`lastRenewal\` says \`step\` with no fallback, its log has no \`renewal_fallback\`, and step-ca's request log shows an answered \`/1.0/rekey\` and no ACME order in that run — or the section fails. Cells: median (min–max).`,
    '',
  );
  const agent = runsOf(r, 'agent-step');
  const a = agent ? med(agent.wallMs) : NaN;
  s.push(
    table(
      ['tool', 'how it renews', 'wall', 'CPU', 'peak RSS', 'cert-agent by rekey ÷ this'],
      r.tools.map((t) => [
        t.name,
        t.how,
        cell(summarize(t.runs.wallMs), 'ms'),
        cell(summarize(t.runs.cpuMs), 'ms'),
        cell(summarize(t.runs.rssKb.map((x) => x / 1024)), 'MiB', 1),
        t.key === 'agent-step' || !Number.isFinite(a / med(t.runs.wallMs)) ? '—' : `${fmt(a / med(t.runs.wallMs), 2)}×`,
      ]),
    ),
    '',
  );
  const goals = ratios(r).map((x) => `cert-agent / ${x.label} = ${fmt(x.q, 2)}× (goal ≤ ${fmt(x.limit, 1)}×)`);
  if (goals.length) s.push(`Ratios (medians): ${goals.join('; ')}.`, '');
  const acme = runsOf(r, 'agent-acme');
  if (agent && acme) {
    const m = med(acme.wallMs);
    const cpu = med(acme.cpuMs) - med(agent.cpuMs);
    const signed = (v: number, less: string, more: string) => `${fmt(Math.abs(v))} ms ${v >= 0 ? less : more}`;
    s.push(
      `**Rekey against the agent's own ACME order** (same rounds): ${signed(m - a, 'saved', 'more')} wall (${fmt(a)} against ${fmt(m)} ms, ${fmt(a / m, 2)}×), ${signed(cpu, 'saved', 'more')} CPU.`,
      '',
    );
  }
  s.push(...between(r, nodeMs), '');
  if (r.failures.length)
    s.push(
      'Failed runs (left out of the medians):',
      '',
      ...r.failures.slice(0, 8).map((f) => `- ${f}`),
      ...(r.failures.length > 8 ? [`- … ${r.failures.length - 8} more`] : []),
      '',
    );
  return s;
}

/** One line for the report's "where the misses come from", when a target of this section is missed. */
export function rekeyAnalysis(r: RekeyResult | undefined, nodeMs: number | undefined): string[] {
  if (!r || rekeyTargets(r).every((t) => t.met !== false)) return [];
  const stretches = split(r.phases);
  const agent = runsOf(r, 'agent-step')!;
  const others = (['lego', 'step-renew'] as const)
    .map((k) => [k, runsOf(r, k)] as const)
    .filter(([, x]) => x)
    .map(([k, x]) => `${k === 'lego' ? '`lego renew`' : '`step ca renew`'} ${fmt(med(x!.wallMs))} ms`);
  const parts = stretches.map(([k, ms]) => `${SHORT[k] ?? k} ${fmt(med(ms))} ms`);
  return [
    `Renewal over the CA's API: cert-agent's ${fmt(med(agent.wallMs))} ms against ${others.join(' and ')}; its wall time split as ${parts.join(', ')}${nodeMs === undefined ? '' : ` (a bare \`node -e 0\` takes ${fmt(nodeMs)} ms)`}; step-ca's own work on the rekey is ${fmt(med(r.phases.map((p) => p.caMs)), 1)} ms.`,
  ];
}

const SHORT: Record<string, string> = {
  'spawn → renewal_started': 'start-up until the decision',
  'renewal_started → rekey_request': 'new key, CSR and TLS context',
  'rekey_request → rekey_answer': 'the mutual-TLS exchange on the wire',
  'rekey_answer → certificate_installed': 'checks and install',
  'certificate_installed → reload_done': 'reload',
  'reload_done → exit': 'exit',
  'certificate_installed → exit': 'exit',
};

/** Words for the stretch between two marks of the agent's log (spawn and exit are the parent's). */
const STRETCH: Record<string, string> = {
  'spawn → renewal_started': 'start-up until the decision (Node, bundle, config, trust, the eligibility checks)',
  'renewal_started → rekey_request':
    'the rekey exchange, first part: the new key, its CSR and the request made ready (Node’s TLS context with the pinned roots and the client certificate, the connection begun)',
  'rekey_request → rekey_answer':
    'the rekey exchange, second part: on the wire (TLS handshake with the current certificate, the POST, step-ca’s answer)',
  'rekey_answer → certificate_installed': 'checks (names, key, chain to the pin) and the atomic install',
  'renewal_started → certificate_installed':
    'the rekey exchange, checks and install (new key, mutual-TLS POST /1.0/rekey, names, key and chain checks, atomic install)',
  'certificate_installed → exit': 'installed to exit (state, lock, Node’s teardown)',
  'certificate_installed → reload_done': 'the reload (`none` here)',
  'reload_done → exit': 'state, lock and Node’s teardown until exit',
};

/** What stands between the agent and `step ca renew`: the agent's wall time split at its own log lines. */
function between(r: RekeyResult, nodeMs: number | undefined): string[] {
  const stretches = split(r.phases);
  const agent = runsOf(r, 'agent-step');
  const step = runsOf(r, 'step-renew');
  if (!stretches.length || !agent) return [];
  const caMs = med(r.phases.map((p) => p.caMs));
  const parts = stretches.map(([k, ms]) => `${STRETCH[k] ?? `\`${k}\``}: ${cell(summarize(ms), 'ms')}`);
  const out = [
    `**What stands between the agent and \`step\`** (${r.phases.length} extra runs of the rekey agent logging at info level; times from its own log lines against the parent's spawn and exit, and two marks in the same shape, \`rekey_request\` when Node's HTTP client sends the request (its TLS context built, the connection begun) and \`rekey_answer\` when the answer's headers are in, from Node's own HTTP client diagnostics channels, preloaded with \`node --require\` in these runs only): ${parts.join('; ')}. Of that, step-ca itself spent ${fmt(caMs, 1)} ms answering \`/1.0/rekey\` (the duration in its request log).${tlsContext(r)}`,
  ];
  if (step) {
    const s = med(step.wallMs);
    const start = med(stretches[0]![1]);
    const node =
      nodeMs === undefined
        ? ''
        : ` A bare \`node -e 0\` takes ${fmt(nodeMs)} ms in this run (command latency section), so ${fmt(start - nodeMs)} ms of the start-up are the agent's own.`;
    out.push(
      '',
      `\`step ca renew\` (Go) takes ${fmt(s)} ms in all; the agent's start-up until its decision alone takes ${fmt(start)} ms, and the whole run ${fmt(med(agent.wallMs) - s)} ms more than step's.${node}`,
    );
  }
  return out;
}

/** Node's TLS context for the request, timed apart: with the pinned root and the client certificate, the latter only, empty. */
function tlsContext(r: RekeyResult): string {
  const t = r.tlsContextMs;
  if (!t?.caAndCert.length || !t.cert.length || !t.empty.length) return '';
  return ` Node's TLS context for that request alone (\`tls.createSecureContext\`, the first of a bare \`node\` with a clean environment as the agent has, the agent's files, ${t.caAndCert.length} runs each): ${cell(summarize(t.caAndCert), 'ms', 1)} with the pinned root as \`ca\` and the client certificate, ${cell(summarize(t.cert), 'ms', 1)} with the client certificate only, ${cell(summarize(t.empty), 'ms', 1)} empty.`;
}

/**
 * The stretches between consecutive marks (spawn, the agent's events in log
 * order, exit), per run; only events every run logged, so the stretches add
 * up to each run's wall time.
 */
function split(phases: RekeyMarks[]): [string, number[]][] {
  if (!phases.length) return [];
  const events = phases[0]!.marks.map(([e]) => e).filter((e) => phases.every((p) => p.marks.some(([x]) => x === e)));
  const names = ['spawn', ...events, 'exit'];
  const out = names.slice(1).map((n, i): [string, number[]] => [`${names[i]} → ${n}`, []]);
  for (const p of phases) {
    const at = (n: string) => (n === 'spawn' ? 0 : n === 'exit' ? p.exitMs : p.marks.find(([x]) => x === n)![1]);
    names.slice(1).forEach((n, i) => out[i]![1].push(at(n) - at(names[i]!)));
  }
  return out;
}
