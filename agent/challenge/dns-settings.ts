/**
 * dns-01's names and settings, shared by the solver and its `doctor`
 * checks: the record's name and value, and where the zone and its servers
 * are looked up.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { DnsChallengeSettings } from '../config/schema.js';
import type { DnsServer } from '../dns/client.js';
import { ConfigError } from '../lib/errors.js';
import type { Lookup } from './dns-authorities.js';
import type { ChallengeSettings } from './types.js';

/** The TXT value of a key authorization: its SHA-256, base64url without padding. */
export function txtValue(keyAuthorization: string): string {
  return createHash('sha256').update(keyAuthorization).digest('base64url');
}

/** Where the record of a name goes; a wildcard's is its base name's. */
export function recordName(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, '').replace(/\.$/, '').toLowerCase()}`;
}

/** challenge.dns, which the config requires in this mode. */
export function dnsSettings(settings: ChallengeSettings): DnsChallengeSettings {
  if (!settings.dns)
    throw new ConfigError('challenge.dns', 'is required with challenge.mode: dns (server and tsig, or command)');
  return settings.dns;
}

/** The first nameserver of /etc/resolv.conf: where a command's records are looked up when no server is configured. */
export function systemResolver(text?: string): DnsServer {
  let conf = text;
  if (conf === undefined) {
    try {
      conf = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      conf = '';
    }
  }
  for (const line of conf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    // A link-local address keeps its %scope: without it the kernel cannot tell which link, and refuses it.
    const host = m?.[1];
    if (host && isIP(host)) return { host, port: 53 };
  }
  throw new ConfigError(
    'challenge.dns.server',
    'is needed: /etc/resolv.conf names no nameserver to look up the zone and its authoritative servers through',
  );
}

/** The system's resolver, or none (an NS name outside the zone then stays without an address). */
function systemResolverIfAny(): DnsServer | undefined {
  try {
    return systemResolver();
  } catch {
    return undefined;
  }
}

/**
 * Where the zone and its servers are looked up: the configured server
 * without recursion (the zone's primary), with the system's resolver for NS
 * names outside the zone; without one (the command hook), the system's
 * resolver, asked to recurse.
 */
export function lookupOf(dns: DnsChallengeSettings): Lookup {
  const zone = dns.zone ? { zone: dns.zone } : {};
  if (!dns.server) return { server: systemResolver(), recursive: true, ...zone };
  return { server: dns.server, recursive: false, resolver: systemResolverIfAny, ...zone };
}
