/** The report's part on issuance over dns-01 (bench/sections/dns01.ts): the tools side by side and the agent's split. */
import { fmt, table } from './lib/markdown.js';
import { cell, median, summarize } from './lib/stats.js';
import { STRETCHES } from './sections/dns01-marks.js';
import type { Dns01Result, Dns01Tool, Dns01ToolKey } from './sections/dns01.js';

const med = (xs: number[]) => median(xs.filter(Number.isFinite));
const toolOf = (r: Dns01Result, key: Dns01ToolKey): Dns01Tool | undefined =>
  r.tools.find((t) => t.key === key && t.runs.wallMs.length);
const ratio = (a: number[], b: number[]) => {
  const q = med(a) / med(b);
  return Number.isFinite(q) ? `${fmt(q, 2)}×` : '—';
};

export function renderDns01(r: Dns01Result): string[] {
  const names = r.names.map((n) => `\`${n}\``).join(' and ');
  const s: string[] = ['## Issuance over dns-01: `cert-agent renew --force` against `lego renew --dns rfc2136`', ''];
  s.push(
    `One certificate for ${names}, proven by TXT records that each tool adds to the same bind9 (on 127.0.0.1 and a free port, authoritative for the zone, one TSIG key per tool, \`update-policy { grant KEY zonesub TXT; }\`) and that the same step-ca, started with \`--resolver\` at that bind9, looks up. The agent is enrolled with \`challenge.mode: dns\` and \`renewal.method: acme\`, so every \`renew --force\` orders (a new key). lego renews the certificate of a first \`lego run\` with \`renew --days 9999 --no-random-sleep\` (forced: a new order and a new key, its account kept, as the agent's), \`--dns.resolvers\` at the same bind9 and \`--dns.disable-cp\`: lego's full propagation check asks each NS name on port 53 through the system resolver, which knows neither the name nor this port, so lego checks only that the resolver (here the authoritative bind9 itself) answers, while the agent asks every authoritative server of the zone for the record's value. lego runs with its rfc2136 provider's fixed waits set to 0, and again with its default polling interval (2 s slept before each name's first check). One untimed round, then ${r.rounds} round${r.rounds === 1 ? '' : 's'}, each running every tool once as a whole process in a random order; wall time from the parent's spawn to exit, CPU (in steps of 10 ms) and peak RSS from GNU time. Every timed run must leave a new certificate for both names and no TXT record at the name (\`dig +norec\`). Cells: median (min–max). The two bind9 columns come from bind9's own log (\`querylog yes\`; its timestamps move in steps of about 4 ms), per record: from the update that added it to the first query for it (the tool's own first check), and to the last query before the next update (the CA's).`,
    '',
  );
  const agent = toolOf(r, 'agent');
  s.push(
    table(
      [
        'tool',
        'propagation settings',
        'wall',
        'CPU',
        'peak RSS',
        'added → first check',
        'added → CA asks',
        'cert-agent ÷ this (wall, CPU, RSS)',
      ],
      r.tools
        .filter((t) => t.runs.wallMs.length)
        .map((t) => [
          t.name,
          t.how,
          cell(summarize(t.runs.wallMs), 'ms'),
          cell(summarize(t.runs.cpuMs), 'ms'),
          cell(summarize(t.runs.rssKb.map((x) => x / 1024)), 'MiB', 1),
          cell(summarize(t.records.map((x) => x.checkMs)), 'ms'),
          cell(summarize(t.records.map((x) => x.caMs)), 'ms'),
          !agent || t.key === 'agent'
            ? '—'
            : [
                ratio(agent.runs.wallMs, t.runs.wallMs),
                ratio(agent.runs.cpuMs, t.runs.cpuMs),
                ratio(agent.runs.rssKb, t.runs.rssKb),
              ].join(', '),
        ]),
    ),
    '',
  );
  s.push(...ratios(r), ...legoWait(r), ...agentSplit(r));
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

function ratios(r: Dns01Result): string[] {
  const agent = toolOf(r, 'agent');
  const out = (['lego-nowait', 'lego-poll'] as const).flatMap((k) => {
    const o = toolOf(r, k);
    if (!agent || !o) return [];
    return [
      `cert-agent / ${o.name}: wall ${ratio(agent.runs.wallMs, o.runs.wallMs)}, CPU ${ratio(agent.runs.cpuMs, o.runs.cpuMs)}, peak RSS ${ratio(agent.runs.rssKb, o.runs.rssKb)}`,
    ];
  });
  if (!out.length) return [];
  const lego = toolOf(r, 'lego-nowait');
  const coarse =
    lego && med(lego.runs.cpuMs) <= 20
      ? ` GNU time counts CPU in steps of 10 ms: lego's ${fmt(med(lego.runs.cpuMs))} ms is one or two steps, too coarse for its CPU ratio to be more than an order of magnitude.`
      : '';
  return [`Ratios (medians): ${out.join('; ')}.${coarse}`, ''];
}

/** lego's wait: its fixed sleeps (the polling runs against the runs without) and what bind9 saw. */
function legoWait(r: Dns01Result): string[] {
  const [none, poll, defaults] = (['lego-nowait', 'lego-poll', 'lego-defaults'] as const).map((k) => toolOf(r, k));
  if (!none) return [];
  const first = (t: Dns01Tool) => fmt(med(t.records.map((x) => x.checkMs)));
  const parts = [
    `**lego's wait.** Without its fixed waits lego checks ${first(none)} ms after its record is added (bind9's log), and its whole run takes ${fmt(med(none.runs.wallMs))} ms: that is lego's own time.`,
  ];
  if (poll)
    parts.push(
      `With its default polling interval it sleeps before each name's first check (${first(poll)} ms after the record is added), and the run takes ${fmt(med(poll.runs.wallMs))} ms, ${fmt(med(poll.runs.wallMs) - med(none.runs.wallMs))} ms more: the sleep, once per name, as lego solves the names one after the other (its rfc2136 provider is sequential).`,
    );
  if (defaults)
    parts.push(
      `With all its rfc2136 defaults it also waits 60 s between the two names (\`RFC2136_SEQUENCE_INTERVAL\` defaults to 60 s, lego's default propagation timeout): ${cell(summarize(defaults.runs.wallMs), 'ms')} over ${defaults.runs.wallMs.length} run${defaults.runs.wallMs.length === 1 ? '' : 's'}.`,
    );
  return [parts.join(' '), ''];
}

const STRETCH_WORDS: Record<string, string> = {
  'start-up': 'start-up until the decision (Node, bundle, config, trust, checks)',
  ACME: 'ACME: requests to the CA and the CA at work (new order, authorizations, the challenges answered and validated, finalize, download), the new key and CSR',
  'DNS update': "DNS update: the zone's lookup and the signed update that adds each record, the withdrawals",
  wait: 'wait: every authoritative server asked until it answers the record (`dns_record_published` → the challenge answered)',
  install: 'install: checks (names, key, chain to the pin) and the atomic install',
  exit: 'state, lock and Node’s teardown until exit',
};

/** The agent's wall time by stretch, from its own log with preloaded marks. */
function agentSplit(r: Dns01Result): string[] {
  if (!r.phases.length) return [];
  const rows = STRETCHES.map((k) => [STRETCH_WORDS[k] ?? k, cell(summarize(r.phases.map((p) => p.ms[k])), 'ms')]);
  rows.push(['whole run (spawn → exit)', cell(summarize(r.phases.map((p) => p.exitMs)), 'ms')]);
  const waits = r.phases.flatMap((p) => p.waitsMs);
  return [
    `**Where the agent's time goes** (${r.phases.length} extra runs logging at info level, with marks in the same shape preloaded by \`node --require\` in these runs only: each request to the CA and its answer, from Node's HTTP client diagnostics channels, and each DNS message sent. The stretches add up to each run's wall time). The propagation wait is apart from the rest: ${cell(summarize(waits), 'ms', 1)} per record (${waits.length} records), ${cell(summarize(r.phases.map((p) => p.ms.wait)), 'ms', 1)} per run.`,
    '',
    table(['stretch', 'ms per run'], rows),
    '',
  ];
}
