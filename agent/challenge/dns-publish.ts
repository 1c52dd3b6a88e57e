/**
 * The two ways dns-01 puts a TXT record into the site's DNS: an RFC 2136
 * update signed with the container's TSIG key (bind9, Knot, PowerDNS,
 * Technitium), or `challenge.dns.command`, the operator's own program for
 * any other provider, run as `reload.command` is (argv, no shell, a minimal
 * environment, a time limit). Each failure becomes one line in the
 * operator's terms: which server said what, and what to change.
 */
import { readFileSync } from 'node:fs';
import type { DnsChallengeSettings } from '../config/schema.js';
import { DnsError, updateTxt, type DnsServer } from '../dns/client.js';
import { parseTsigSecret } from '../dns/key-file.js';
import type { TsigKey } from '../dns/tsig.js';
import { ChallengeError, ConfigError, describeError } from '../lib/errors.js';
import { runArgv, runFailure } from '../lib/run.js';
import { findZone } from '../dns/client.js';

export interface Publisher {
  readonly via: 'rfc2136' | 'command';
  /** The zone a record goes into (RFC 2136; the command finds its own). */
  zoneOf(name: string): Promise<string | undefined>;
  present(name: string, value: string): Promise<void>;
  /** Withdraws one record; `zone`: the one it was published in, when it was noted with one. */
  cleanup(name: string, value: string, zone?: string): Promise<void>;
}

const UPDATE_TIMEOUT_MS = 5000;

export const showAddress = (s: DnsServer) => (s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`);

/**
 * The TSIG key from its file: bind9's `key "NAME" { algorithm ...; secret
 * "..."; };` as `tsig-keygen` prints it, or the base64 secret alone. The
 * file's mode and owner were checked when the config was loaded; a name or
 * algorithm in the file that contradicts the config is refused here.
 */
export function readTsigKey(tsig: NonNullable<DnsChallengeSettings['tsig']>): TsigKey {
  let text: string;
  try {
    text = readFileSync(tsig.secretFile, 'utf8');
  } catch (err) {
    throw new ConfigError('challenge.dns.tsig.secretFile', `${tsig.secretFile} cannot be read: ${describeError(err)}`);
  }
  let parsed: ReturnType<typeof parseTsigSecret>;
  try {
    parsed = parseTsigSecret(text);
  } catch (err) {
    throw new ConfigError('challenge.dns.tsig.secretFile', `${tsig.secretFile}: ${describeError(err)}`);
  }
  if (parsed.name !== undefined && parsed.name.replace(/\.$/, '').toLowerCase() !== tsig.name.toLowerCase())
    throw new ConfigError(
      'challenge.dns.tsig.name',
      `is ${tsig.name}, but ${tsig.secretFile} holds the key "${parsed.name}": give the name the server knows the key by`,
    );
  if (parsed.algorithm !== undefined && parsed.algorithm.replace(/\.$/, '').toLowerCase() !== tsig.algorithm)
    throw new ConfigError(
      'challenge.dns.tsig.algorithm',
      `is ${tsig.algorithm}, but ${tsig.secretFile} says ${parsed.algorithm}: they must agree`,
    );
  return { name: tsig.name, algorithm: tsig.algorithm, secret: parsed.secret };
}

/** What to change for each answer a server can give to an update. */
export function explainUpdate(
  err: DnsError,
  ctx: { key: TsigKey; keyFile: string; zone: string; name: string },
): string {
  const where = `DNS server ${err.server}`;
  const key = `TSIG key ${ctx.key.name} (${ctx.key.algorithm})`;
  switch (err.rcode) {
    case 'BADSIG':
      return `${where} refused the update of ${ctx.name} TXT: BADSIG, the signature does not verify — the secret in ${ctx.keyFile} is not the one the server holds for ${key}`;
    case 'BADKEY':
      return `${where} refused the update of ${ctx.name} TXT: BADKEY, it knows no ${key} — add the key to the server, or correct challenge.dns.tsig.name and algorithm`;
    case 'BADTIME':
      return `${where} refused the update of ${ctx.name} TXT: BADTIME, its clock and this container's differ by more than 5 minutes`;
    case 'REFUSED':
      return `${where} answered REFUSED to the update of ${ctx.name} TXT in zone ${ctx.zone}: its policy does not let ${key} change that name — grant it in the zone's update-policy (README: dns-01 with bind9)`;
    case 'NOTAUTH':
      return `${where} answered NOTAUTH to the update of zone ${ctx.zone}: it is not the primary server of that zone (or does not know the key) — point challenge.dns.server at the zone's primary and check challenge.dns.zone`;
    case 'NOTZONE':
      return `${where} answered NOTZONE: ${ctx.name} is not inside zone ${ctx.zone} — correct challenge.dns.zone`;
    default:
      if (err.reason === 'timeout' || err.reason === 'unreachable')
        return `${where} ${err.reason === 'timeout' ? 'did not answer' : 'is unreachable (nothing listens there)'}: the update of ${ctx.name} TXT was not made — check challenge.dns.server, and that UDP and TCP to it are allowed`;
      return `${where}: the update of ${ctx.name} TXT in zone ${ctx.zone} failed: ${err.message}`;
  }
}

/** RFC 2136 with TSIG: one signed update per record, to the configured server. */
export function rfc2136Publisher(
  dns: DnsChallengeSettings & { server: DnsServer; tsig: NonNullable<DnsChallengeSettings['tsig']> },
): Publisher {
  const key = readTsigKey(dns.tsig);
  const zones = new Map<string, string>();
  const zoneOf = async (name: string) => {
    if (dns.zone) return dns.zone;
    const known = zones.get(name);
    if (known) return known;
    try {
      const zone = await findZone(dns.server, name, { timeoutMs: UPDATE_TIMEOUT_MS });
      zones.set(name, zone);
      return zone;
    } catch (err) {
      const silent = err instanceof DnsError && (err.reason === 'timeout' || err.reason === 'unreachable');
      const todo = silent
        ? 'check challenge.dns.server, and that UDP and TCP to it are allowed'
        : 'set challenge.dns.zone';
      throw new ChallengeError(`cannot find the zone of ${name}: ${describeError(err)} — ${todo}`, { cause: err });
    }
  };
  const update = async (action: 'add' | 'delete', name: string, value: string, noted?: string) => {
    const zone = noted ?? (await zoneOf(name));
    try {
      await updateTxt(dns.server, zone, { action, name, value, ttl: dns.ttl }, key, { timeoutMs: UPDATE_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof DnsError)
        throw new ChallengeError(explainUpdate(err, { key, keyFile: dns.tsig.secretFile, zone, name }), { cause: err });
      throw err;
    }
  };
  return {
    via: 'rfc2136',
    zoneOf,
    present: (name, value) => update('add', name, value),
    cleanup: (name, value, zone) => update('delete', name, value, zone),
  };
}

/** The operator's program: `command... present|cleanup NAME VALUE`, exit 0 when done. */
export function commandPublisher(command: string[], timeoutSeconds: number): Publisher {
  const shown = JSON.stringify(command);
  const run = async (action: 'present' | 'cleanup', name: string, value: string) => {
    const result = await runArgv([...command, action, name, value], timeoutSeconds);
    const failure = runFailure(result, timeoutSeconds);
    if (failure) throw new ChallengeError(`challenge.dns.command ${shown} ${action} ${name} ${failure}`);
  };
  return {
    via: 'command',
    zoneOf: () => Promise.resolve(undefined),
    present: (name, value) => run('present', name, value),
    cleanup: (name, value) => run('cleanup', name, value),
  };
}
