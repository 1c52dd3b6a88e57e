/**
 * dns-01's wait and its explanations: a TXT record counts as published when
 * every authoritative server of its zone answers it with authority (not a
 * recursive cache, whose old "no such name" could linger for the negative
 * TTL), and what each server answered instead is said in the operator's
 * terms — the same words for the wait that ran out, the self-check after a
 * refusal and `doctor`.
 */
import { authoritativeServers, findZone, query, DnsError, type DnsAnswer, type DnsServer } from '../dns/client.js';
import { ChallengeError, describeError, oneLine } from '../lib/errors.js';

/** One authoritative server of the zone. */
export interface Authority {
  name: string;
  host: string;
  port: number;
}

/** What one authoritative server answered for the record: undefined when it is right. */
export type Finding = string | undefined;

/** How the zone and its servers are found: the configured server, or the configured zone. */
export interface Lookup {
  server: DnsServer;
  zone?: string;
}

/** Per query, so one silent server cannot eat the whole wait. */
const QUERY_TIMEOUT_MS = 2000;
/** Between rounds: quick at first (a local server has it at once), then every 2 s. */
const PAUSES_MS = [100, 250, 500, 1000, 2000];

export const showServer = (a: Authority) => (a.name === a.host ? `${hostPort(a)}` : `${a.name} (${hostPort(a)})`);
const hostPort = (a: { host: string; port: number }) =>
  a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;

/**
 * The zone that holds `name` and its authoritative servers, as the configured
 * server tells. Asked with recursion desired: that server may be a recursive
 * resolver (resolv.conf's, in command mode), which refuses or answers from
 * its cache alone without it; an authoritative server answers either way.
 */
export async function authoritiesOf(lookup: Lookup, name: string): Promise<{ zone: string; servers: Authority[] }> {
  const opts = { timeoutMs: QUERY_TIMEOUT_MS, recursion: true };
  const zone = lookup.zone ?? (await findZone(lookup.server, name, opts));
  const servers = await authoritativeServers(lookup.server, zone, opts);
  return { zone, servers };
}

/** One server's answer for the record, judged. */
export async function askAuthority(server: Authority, zone: string, name: string, value: string): Promise<Finding> {
  let answer: DnsAnswer;
  try {
    answer = await query(server, name, 'TXT', { timeoutMs: QUERY_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof DnsError && err.reason === 'timeout') return `${showServer(server)} did not answer`;
    if (err instanceof DnsError && err.reason === 'unreachable')
      return `${showServer(server)} is unreachable (nothing listens there)`;
    return `${showServer(server)} could not be asked: ${describeError(err)}`;
  }
  return judge(server, zone, name, value, answer);
}

function judge(server: Authority, zone: string, name: string, value: string, answer: DnsAnswer): Finding {
  const who = showServer(server);
  if (answer.rcode === 'NXDOMAIN')
    return `${who} answered NXDOMAIN for ${name}: the record is not in its copy of ${zone} (not updated yet, or it serves another copy)`;
  if (answer.rcode === 'REFUSED')
    return `${who} answered REFUSED: it does not serve ${zone}, though the zone's NS records name it`;
  if (answer.rcode !== 'NOERROR') return `${who} answered ${answer.rcode} for ${name} TXT`;
  if (!answer.aa)
    return `${who} answered without authority for ${zone} (a recursive server or a stale NS record): the zone's NS records must name its real servers`;
  const texts = answer.answers
    .filter((r) => r.type === 'TXT' && r.name === name)
    .map((r) => (Array.isArray(r.data) ? r.data.join('') : String(r.data)));
  if (texts.includes(value)) return undefined;
  if (!texts.length) return `${who} answered no TXT record at ${name}`;
  const shown = texts.map((t) => `"${oneLine(t, 60)}"`).join(', ');
  return `${who} answered TXT ${shown} at ${name}, not the value of this order`;
}

/** Every authoritative server asked once: the findings of those that do not answer the record. */
export async function findingsFor(lookup: Lookup, name: string, value: string): Promise<string[]> {
  const { zone, servers } = await authoritiesOf(lookup, name);
  const all = await Promise.all(servers.map((s) => askAuthority(s, zone, name, value)));
  return all.filter((f): f is string => f !== undefined);
}

/**
 * Waits until every authoritative server answers `value` at `name`, at most
 * `timeoutSeconds`; then a ChallengeError that says what each server still
 * answered. `sleep` is injected for the tests.
 */
export async function waitForRecord(
  lookup: Lookup,
  name: string,
  value: string,
  timeoutSeconds: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const { zone, servers } = await authoritiesOf(lookup, name);
  let waiting = servers;
  let findings: string[];
  for (let round = 0; ; round++) {
    const answers = await Promise.all(waiting.map((s) => askAuthority(s, zone, name, value)));
    waiting = waiting.filter((_, i) => answers[i] !== undefined);
    findings = answers.filter((f): f is string => f !== undefined);
    if (!waiting.length) return;
    const pause = PAUSES_MS[Math.min(round, PAUSES_MS.length - 1)] as number;
    if (Date.now() + pause > deadline) break;
    await sleep(pause);
  }
  throw new ChallengeError(
    `the TXT record ${name} did not reach every authoritative server of ${zone} within ${timeoutSeconds}s ` +
      `(challenge.dns.propagationTimeout): ${findings.join('; ')}`,
  );
}
