/**
 * dns-01's wait and its explanations: a TXT record counts as published when
 * every authoritative server of its zone answers it with authority (not a
 * recursive cache, whose old "no such name" could linger for the negative
 * TTL), and what each server answered instead is said in the operator's
 * terms — the same words for the wait that ran out and the self-check after
 * a refusal. A server with several addresses is ready when one of them
 * answers (an IPv6 address may be out of reach of an IPv4-only container).
 */
import { query, DnsError, type DnsAnswer } from '../dns/client.js';
import { ChallengeError, describeError, oneLine } from '../lib/errors.js';
import { authoritiesOf, QUERY_TIMEOUT_MS, showServer, type Authority, type Lookup } from './dns-authorities.js';

/** What one authoritative server answered for the record: undefined when it is right. */
export type Finding = string | undefined;

/** Between rounds: quick at first (a local server has it at once), then every 2 s. */
const PAUSES_MS = [100, 250, 500, 1000, 2000];

/** One address's answer for the record, judged. */
export async function askAuthority(server: Authority, zone: string, name: string, value: string): Promise<Finding> {
  let answer: DnsAnswer;
  try {
    answer = await query(server, name, 'TXT', { timeoutMs: QUERY_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof DnsError && err.reason === 'timeout') return `${showServer(server)} did not answer`;
    if (err instanceof DnsError && err.reason === 'unreachable')
      return `${showServer(server)} is unreachable from here (${oneLine(err.message, 80)})`;
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

/** The addresses of each NS server, grouped: a server is ready when one of its addresses answers right. */
function byServer(servers: Authority[]): Authority[][] {
  const groups = new Map<string, Authority[]>();
  for (const s of servers) groups.set(s.name, [...(groups.get(s.name) ?? []), s]);
  return [...groups.values()];
}

/** One round over the servers not yet ready: the ones still not ready, with what they answered. */
async function round(groups: Authority[][], zone: string, name: string, value: string) {
  const results = await Promise.all(
    groups.map(async (g) => {
      const answers = await Promise.all(g.map((s) => askAuthority(s, zone, name, value)));
      return answers.includes(undefined) ? undefined : answers.join('; ');
    }),
  );
  return {
    waiting: groups.filter((_, i) => results[i] !== undefined),
    findings: results.filter((f): f is string => f !== undefined),
  };
}

/** Every authoritative server asked once: the findings of those that do not answer the record. */
export async function findingsFor(
  lookup: Lookup,
  name: string,
  value: string,
): Promise<{ zone: string; servers: Authority[]; findings: string[] }> {
  const { zone, servers, unresolved } = await authoritiesOf(lookup, name);
  const { findings } = await round(byServer(servers), zone, name, value);
  return {
    zone,
    servers,
    findings: [...findings, ...unresolved.map((ns) => `${ns} has no address the agent can find`)],
  };
}

/**
 * Waits until every authoritative server answers `value` at `name`, at most
 * `timeoutSeconds`; then a ChallengeError that says what each server still
 * answered. An NS server with no address the agent can find cannot be
 * waited for: `onUnresolved` hears of it. `sleep` is injected for the tests.
 */
export async function waitForRecord(
  lookup: Lookup,
  name: string,
  value: string,
  timeoutSeconds: number,
  onUnresolved: (names: string[]) => void = () => undefined,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const { zone, servers, unresolved } = await authoritiesOf(lookup, name);
  if (unresolved.length) onUnresolved(unresolved);
  let waiting = byServer(servers);
  let findings: string[];
  for (let n = 0; ; n++) {
    ({ waiting, findings } = await round(waiting, zone, name, value));
    if (!waiting.length) return;
    const pause = PAUSES_MS[Math.min(n, PAUSES_MS.length - 1)] as number;
    if (Date.now() + pause > deadline) break;
    await sleep(pause);
  }
  throw new ChallengeError(
    `the TXT record ${name} did not reach every authoritative server of ${zone} within ${timeoutSeconds}s ` +
      `(challenge.dns.propagationTimeout): ${findings.join('; ')}`,
  );
}
