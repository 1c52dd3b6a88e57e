/**
 * Which servers dns-01 waits for: the zone that holds a record and the
 * addresses of each of its NS servers. The zone and its NS records are asked
 * of the configured server (the zone's primary, usually authoritative only,
 * so without recursion); an NS server named outside the zone has no address
 * there, so it is looked up through the system's resolver, with recursion.
 * Without a configured server (the command hook) everything goes through
 * the system's resolver. An NS whose address cannot be found is named, not
 * silently dropped.
 */
import { isIP } from 'node:net';
import { DnsError, findZone, query, type DnsRecord, type DnsServer } from '../dns/client.js';
import { ChallengeError } from '../lib/errors.js';

/** One address of one authoritative server of the zone. */
export interface Authority {
  /** The NS name. */
  name: string;
  host: string;
  port: number;
}

/** Where the zone and its servers are looked up. */
export interface Lookup {
  server: DnsServer;
  /** The server is a resolver (the system's): ask it to recurse. */
  recursive: boolean;
  zone?: string;
  /** A resolver for NS names the server has no address for; absent when none is configured. */
  resolver?: () => DnsServer | undefined;
}

export interface Authorities {
  zone: string;
  /** Every address of every NS server that has one. */
  servers: Authority[];
  /** NS servers with no address the agent could find. */
  unresolved: string[];
}

/** Per query, so one silent server cannot eat the whole wait. */
export const QUERY_TIMEOUT_MS = 2000;

const hostPort = (a: { host: string; port: number }) =>
  a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
export const showServer = (a: Authority) => (a.name === a.host ? hostPort(a) : `${a.name} (${hostPort(a)})`);

/** An address in one textual form, so that the configured server and an NS address compare equal. */
export function canonicalAddress(host: string): string {
  if (isIP(host) !== 6) return host;
  try {
    return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return host.toLowerCase();
  }
}

const sameName = (a: string, b: string) => a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '');

async function addressesAt(server: DnsServer, ns: string, recursion: boolean): Promise<string[]> {
  const out: string[] = [];
  for (const type of ['A', 'AAAA'] as const) {
    try {
      const a = await query(server, ns, type, { recursion, timeoutMs: QUERY_TIMEOUT_MS });
      out.push(...a.answers.filter((r) => r.type === type && sameName(r.name, ns)).map((r) => String(r.data)));
    } catch (err) {
      if (!(err instanceof DnsError)) throw err;
    }
  }
  return out;
}

/** The NS's addresses: glue, then the configured server, then the system's resolver. */
async function addressesOf(lookup: Lookup, ns: string, glue: DnsRecord[]): Promise<string[]> {
  const fromGlue = glue.filter((r) => (r.type === 'A' || r.type === 'AAAA') && sameName(r.name, ns));
  if (fromGlue.length) return fromGlue.map((r) => String(r.data));
  const here = await addressesAt(lookup.server, ns, lookup.recursive);
  if (here.length || lookup.recursive) return here;
  const resolver = lookup.resolver?.();
  return resolver ? addressesAt(resolver, ns, true) : [];
}

/** The zone that holds `name` and the addresses of its authoritative servers. */
export async function authoritiesOf(lookup: Lookup, name: string): Promise<Authorities> {
  const opts = { recursion: lookup.recursive, timeoutMs: QUERY_TIMEOUT_MS };
  const zone = lookup.zone ?? (await findZone(lookup.server, name, opts));
  const answer = await query(lookup.server, zone, 'NS', opts);
  const names = answer.answers.filter((r) => r.type === 'NS' && sameName(r.name, zone)).map((r) => String(r.data));
  const configured = canonicalAddress(lookup.server.host);
  const servers: Authority[] = [];
  const unresolved: string[] = [];
  for (const ns of names) {
    const hosts = await addressesOf(lookup, ns, answer.additional);
    if (!hosts.length) unresolved.push(ns);
    for (const host of hosts)
      servers.push({ name: ns, host, port: canonicalAddress(host) === configured ? lookup.server.port : 53 });
  }
  if (!servers.length) {
    const why = names.length
      ? `none of its NS servers (${unresolved.join(', ')}) has an address the agent can find`
      : `${hostPort({ ...lookup.server })} answered ${answer.rcode} and no NS record for it`;
    throw new ChallengeError(`cannot tell which servers are authoritative for ${zone}: ${why}`);
  }
  return { zone, servers, unresolved };
}
