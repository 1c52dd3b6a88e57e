/**
 * Where the time of a dns-01 issuance goes, from two witnesses: bind9's own
 * log (every update and query, with milliseconds) gives each tool's wait
 * between its record being added and its first check, and the CA's query;
 * the agent's log, with marks preloaded into extra runs (each HTTP request
 * to the CA and each DNS message it sends), splits the agent's wall time
 * into start-up, ACME, DNS update, wait, install and exit.
 */
import { parseLog } from '../../test/harness/json-log.js';

/** One record as bind9 saw it: added, then asked for. */
export interface RecordTimes {
  /** the update that added it → the first TXT query for it (the tool's own first check), ms */
  checkMs: number;
  /** the update that added it → the last TXT query for it before the next update (the CA's), ms */
  caMs: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const LINE = /^(\d\d)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d)\.(\d{3}) (.*)$/;

/** The records added at `record` in this slice of bind9's log, with when they were asked for. */
export function recordTimes(log: string, record: string): RecordTimes[] {
  const events: { t: number; kind: 'add' | 'update' | 'query' }[] = [];
  const at = `'${record}' TXT`;
  for (const line of log.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, d, mon, y, h, min, s, ms, rest] = m;
    const t = Date.UTC(Number(y), MONTHS.indexOf(mon!), Number(d), Number(h), Number(min), Number(s), Number(ms));
    if (/updating zone/.test(rest!))
      events.push({ t, kind: rest!.includes(`adding an RR at ${at}`) ? 'add' : 'update' });
    else if (rest!.includes(`query: ${record} IN TXT`)) events.push({ t, kind: 'query' });
  }
  const out: RecordTimes[] = [];
  events.forEach((e, i) => {
    if (e.kind !== 'add') return;
    const next = events.findIndex((x, j) => j > i && x.kind !== 'query');
    const queries = events.slice(i + 1, next < 0 ? undefined : next);
    if (queries.length) out.push({ checkMs: queries[0]!.t - e.t, caMs: queries[queries.length - 1]!.t - e.t });
  });
  return out;
}

/**
 * Preloaded (`node --require`) into the agent's extra runs only: marks in
 * the agent's log shape when Node's HTTP client sends a request and has
 * its answer (its diagnostics channels), and when a DNS message leaves
 * (an update, opcode 5, or a query).
 */
export const DNS01_MARKS = `const dc = require('node:diagnostics_channel');
const dgram = require('node:dgram');
const mark = (event, fields) =>
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), event, ...fields }) + '\\n');
dc.subscribe('http.client.request.start', ({ request }) => mark('mark_http_request', { path: request.path }));
dc.subscribe('http.client.response.finish', ({ request }) => mark('mark_http_answer', { path: request.path }));
const send = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (msg, ...rest) {
  if (Buffer.isBuffer(msg) && msg.length > 2) mark(((msg[2] >> 3) & 15) === 5 ? 'mark_dns_update' : 'mark_dns_query');
  return send.call(this, msg, ...rest);
};
`;

export type Stretch = 'start-up' | 'ACME' | 'DNS update' | 'wait' | 'install' | 'exit';
export const STRETCHES: Stretch[] = ['start-up', 'ACME', 'DNS update', 'wait', 'install', 'exit'];

/** One extra run of the agent: its wall time by stretch, and each record's wait. */
export interface AgentSplit {
  ms: Record<Stretch, number>;
  /** dns_record_published → the next request to the CA (the challenge answered), per record, ms */
  waitsMs: number[];
  exitMs: number;
}

/**
 * Walks the agent's log (its events and the preloaded marks, in time order)
 * as a sequence of stretches: start-up until `renewal_started`; ACME from
 * each request to the CA; a DNS update from the first DNS message after
 * ACME work (the zone's lookup, the update, the withdrawals) until
 * `dns_record_published` or the next request; the wait from
 * `dns_record_published` until the next request to the CA (the checks of
 * every authoritative server); install from the certificate's download
 * answered until `certificate_installed`; then exit.
 */
export function splitAgentRun(stderr: string, spawnedAt: number, exitMs: number): AgentSplit {
  const ms: Record<Stretch, number> = { 'start-up': 0, ACME: 0, 'DNS update': 0, wait: 0, install: 0, exit: 0 };
  const waitsMs: number[] = [];
  const cur: { state: Stretch; since: number } = { state: 'start-up', since: 0 };
  let published: number | undefined;
  const enter = (next: Stretch, at: number) => {
    ms[cur.state] += at - cur.since;
    [cur.state, cur.since] = [next, at];
  };
  const lines = parseLog(stderr)
    .filter((l) => l.event && l.event !== 'unparsed')
    .map((l) => ({ l, at: Date.parse(l.time) - spawnedAt }))
    .sort((a, b) => a.at - b.at);
  for (const { l, at } of lines) {
    const ev = l.event;
    if (ev === 'renewal_started' && cur.state === 'start-up') enter('ACME', at);
    else if (ev === 'mark_http_request') {
      if (published !== undefined) waitsMs.push(at - published);
      published = undefined;
      enter('ACME', at);
    } else if ((ev === 'mark_dns_update' || ev === 'mark_dns_query') && cur.state === 'ACME') enter('DNS update', at);
    else if (ev === 'dns_record_published') {
      published = at;
      enter('wait', at);
    } else if (ev === 'mark_http_answer' && /\/certificate\//.test(String(l.path))) enter('install', at);
    else if (ev === 'certificate_installed') enter('exit', at);
  }
  enter('exit', exitMs);
  return { ms, waitsMs, exitMs };
}
