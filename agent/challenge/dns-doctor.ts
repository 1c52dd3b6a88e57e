/**
 * `doctor` for dns-01: harmless checks only, since publishing a probe
 * record would change the site's DNS. The TSIG key as the agent will read
 * it; that the server accepts the key (a signed SOA query whose answer's
 * signature verifies); that every authoritative server of each zone answers
 * with authority; for the command, that it can be started; and records an
 * earlier pass left published.
 */
import { accessSync, constants } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { DnsChallengeSettings } from '../config/schema.js';
import { DnsError, query } from '../dns/client.js';
import { diagnosis, type Diagnosis } from '../lib/diagnosis.js';
import { AgentError, describeError } from '../lib/errors.js';
import { publishedRecords } from '../store/dns-records.js';
import { explainUpdate, readTsigKey, showAddress } from './dns-publish.js';
import { authoritiesOf, showServer } from './dns-authorities.js';
import { lookupOf, recordName } from './dns-settings.js';
import type { SolverContext } from './types.js';

const TIMEOUT_MS = 3000;
const PATHS_NOTE = "the state directory's dns-records.json";

/** The TSIG key file and a signed query with it; both PROBLEM when the server would refuse our updates. */
async function checkKey(dns: DnsChallengeSettings, zone: string): Promise<Diagnosis[]> {
  if (!dns.tsig || !dns.server) return [];
  let key;
  try {
    key = readTsigKey(dns.tsig);
  } catch (err) {
    return [diagnosis('PROBLEM', 'dns key', describeError(err))];
  }
  const lines = [
    diagnosis('ok', 'dns key', `${dns.tsig.secretFile}: TSIG key ${key.name} (${key.algorithm}), root's alone`),
  ];
  const server = showAddress(dns.server);
  try {
    const answer = await query(dns.server, zone, 'SOA', { tsig: key, timeoutMs: TIMEOUT_MS });
    if (answer.rcode !== 'NOERROR')
      lines.push(
        diagnosis('PROBLEM', 'dns server', `${server} answered ${answer.rcode} to a signed SOA query of ${zone}`),
      );
    else
      lines.push(
        diagnosis(
          'ok',
          'dns server',
          `${server} accepts TSIG key ${key.name}: a signed SOA query of ${zone} was answered and the answer's signature verified (whether its update-policy lets the key change the records shows at the first order)`,
        ),
      );
  } catch (err) {
    const message =
      err instanceof DnsError
        ? explainUpdate(err, { key, keyFile: dns.tsig.secretFile, zone, name: zone }).replace(
            /the update of \S+ TXT/,
            `a signed SOA query of ${zone}`,
          )
        : describeError(err);
    lines.push(diagnosis('PROBLEM', 'dns server', message));
  }
  return lines;
}

/** The command: an absolute path that is executable, or a name found in PATH. */
function checkCommand(dns: DnsChallengeSettings): Diagnosis[] {
  const file = dns.command?.[0];
  if (!file) return [];
  const dirs = isAbsolute(file) ? [''] : (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  for (const dir of dirs) {
    try {
      accessSync(dir ? join(dir, file) : file, constants.X_OK);
      return [diagnosis('ok', 'dns command', `${JSON.stringify(dns.command)}: ${file} can be started`)];
    } catch {
      // the next directory
    }
  }
  return [diagnosis('PROBLEM', 'dns command', `${file} is not an executable file (challenge.dns.command)`)];
}

/** Each zone's authoritative servers, asked for its SOA without recursion. */
async function checkAuthorities(
  dns: DnsChallengeSettings,
  domains: string[],
): Promise<{ zones: string[]; lines: Diagnosis[] }> {
  const lines: Diagnosis[] = [];
  const zones: string[] = [];
  for (const domain of domains) {
    const name = recordName(domain);
    let found;
    try {
      found = await authoritiesOf(lookupOf(dns), name);
    } catch (err) {
      const why = err instanceof AgentError ? err.message : describeError(err);
      lines.push(diagnosis('PROBLEM', 'dns zone', `cannot find the zone of ${name} and its servers: ${why}`));
      continue;
    }
    if (zones.includes(found.zone)) continue;
    zones.push(found.zone);
    const bad: string[] = [];
    for (const server of found.servers) {
      try {
        const answer = await query(server, found.zone, 'SOA', { timeoutMs: TIMEOUT_MS });
        if (answer.rcode !== 'NOERROR' || !answer.aa)
          bad.push(`${showServer(server)} answered ${answer.rcode}${answer.aa ? '' : ' without authority'}`);
      } catch (err) {
        bad.push(
          `${showServer(server)}: ${err instanceof DnsError && err.reason === 'timeout' ? 'no answer' : describeError(err)}`,
        );
      }
    }
    const names = found.servers.map(showServer).join(', ');
    lines.push(
      bad.length
        ? diagnosis(
            'PROBLEM',
            'dns authority',
            `zone ${found.zone}: ${bad.join('; ')} — the CA's resolver asks these servers too`,
          )
        : diagnosis('ok', 'dns authority', `zone ${found.zone}: ${names} answer with authority`),
    );
  }
  return { zones, lines };
}

export async function diagnoseDns(dns: DnsChallengeSettings, ctx: SolverContext): Promise<Diagnosis[]> {
  const { zones, lines } = await checkAuthorities(dns, ctx.names);
  const keyLines = dns.tsig ? await checkKey(dns, dns.zone ?? zones[0] ?? recordName(ctx.names[0] ?? '')) : [];
  const left = publishedRecords(ctx.stateDir);
  const via = dns.command ? 'command' : 'rfc2136';
  const mine = left.filter((r) => r.certificate === ctx.certificate && r.via === via);
  const others = left.filter((r) => r.certificate !== ctx.certificate || r.via !== via);
  const leftLines = [
    ...(mine.length
      ? [
          diagnosis(
            'WARN',
            'dns records',
            `${mine.length} record(s) an earlier pass published are still noted (${mine.map((r) => r.name).join(', ')}): this certificate's next order withdraws them`,
          ),
        ]
      : []),
    ...(others.length
      ? [
          diagnosis(
            'WARN',
            'dns records',
            `${others.length} record(s) noted for another certificate or published the other way (${others.map((r) => `${r.certificate} by ${r.via}: ${r.name}`).join(', ')}): only an order of that certificate publishing the same way withdraws them; otherwise delete them from the zone by hand and from ${PATHS_NOTE}`,
          ),
        ]
      : []),
  ];
  return [...keyLines, ...checkCommand(dns), ...lines, ...leftLines];
}
