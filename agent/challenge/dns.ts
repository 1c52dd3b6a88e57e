/**
 * dns-01 (`challenge.mode: dns`): for each name, a TXT record at
 * `_acme-challenge.NAME` holding the digest of the key authorization,
 * published through the site's DNS server (RFC 2136 with TSIG) or the
 * operator's command, awaited on every authoritative server of the zone,
 * and withdrawn afterwards — exactly the records this agent added. Each is
 * noted in the state directory before it is published (store/dns-records.ts),
 * so what a killed pass left is withdrawn by the certificate's next order.
 *
 * It proves names the CA cannot reach over HTTP: a backend behind a proxy,
 * a container on a network the CA cannot connect to, and wildcards (the
 * record of `*.app.internal` is `_acme-challenge.app.internal`).
 */
import type { DnsChallengeSettings } from '../config/schema.js';
import { DnsError } from '../dns/client.js';
import { ChallengeError, ConfigError, describeError, oneLine } from '../lib/errors.js';
import { noteWithdrawn, notePublished, publishedRecords, type PublishedRecord } from '../store/dns-records.js';
import { diagnoseDns } from './dns-doctor.js';
import { commandPublisher, rfc2136Publisher, type Publisher } from './dns-publish.js';
import { dnsSettings, lookupOf, recordName, txtValue } from './dns-settings.js';
import { showServer } from './dns-authorities.js';
import { findingsFor, waitForRecord } from './dns-wait.js';
import type { Challenge, Solver, SolverContext, SolverKind } from './types.js';

/** The publisher the settings name. */
export function publisherOf(dns: DnsChallengeSettings, ctx: SolverContext): Publisher {
  if (dns.command) return commandPublisher(dns.command, ctx.commandTimeoutSeconds);
  if (dns.server && dns.tsig) return rfc2136Publisher({ ...dns, server: dns.server, tsig: dns.tsig });
  throw new ConfigError('challenge.dns', 'needs server and tsig (RFC 2136), or command');
}

class DnsSolver implements Solver {
  readonly type = 'dns-01';
  private readonly published: PublishedRecord[] = [];

  constructor(
    private readonly dns: DnsChallengeSettings,
    private readonly publisher: Publisher,
    private readonly ctx: SolverContext,
  ) {}

  private recordOf(challenge: Challenge, zone: string | undefined): PublishedRecord {
    return {
      certificate: this.ctx.certificate,
      name: recordName(challenge.identifier.value),
      value: txtValue(challenge.keyAuthorization),
      via: this.publisher.via,
      ...(zone ? { zone } : {}),
      at: new Date().toISOString(),
    };
  }

  async present(challenge: Challenge): Promise<void> {
    if (challenge.identifier.type !== 'dns')
      throw new ChallengeError(`dns-01 proves DNS names only; ${challenge.identifier.value} is an IP address`);
    const wanted = this.ctx.names.map((n) => n.replace(/^\*\./, '').toLowerCase());
    if (!wanted.includes(challenge.identifier.value.replace(/^\*\./, '').toLowerCase()))
      throw new ChallengeError(
        `the CA asked to prove ${oneLine(challenge.identifier.value, 80)}, which is not one of this certificate's names`,
      );
    const name = recordName(challenge.identifier.value);
    const record = this.recordOf(challenge, await this.publisher.zoneOf(name));
    notePublished(this.ctx.stateDir, record);
    try {
      await this.publisher.present(record.name, record.value);
    } catch (err) {
      // Refused: nothing was added. Otherwise (no answer, a command that failed) it may have been.
      if (refused(err)) noteWithdrawn(this.ctx.stateDir, record);
      else await withdraw(this.publisher, this.ctx, record);
      throw err;
    }
    this.ctx.log?.info(
      { event: 'dns_record_published', certificate: record.certificate, record: record.name, via: record.via },
      'dns-01 record published',
    );
    try {
      const unresolved = (names: string[]) =>
        this.ctx.log?.warn(
          { event: 'dns_servers_unresolved', certificate: record.certificate, record: record.name, servers: names },
          'NS servers of the zone have no address the agent can find: the wait cannot include them',
        );
      const timeout = this.dns.propagationTimeoutSeconds;
      await waitForRecord(lookupOf(this.dns), record.name, record.value, timeout, unresolved);
    } catch (err) {
      // The order withdraws only what was presented whole: this one is withdrawn here.
      await withdraw(this.publisher, this.ctx, record);
      throw err;
    }
    this.published.push(record);
  }

  async cleanup(challenge: Challenge): Promise<void> {
    const name = recordName(challenge.identifier.value);
    const value = txtValue(challenge.keyAuthorization);
    const record = this.published.find((r) => r.name === name && r.value === value);
    if (!record) return;
    await withdraw(this.publisher, this.ctx, record);
  }

  async selfCheck(challenge: Challenge): Promise<string | undefined> {
    const name = recordName(challenge.identifier.value);
    const lookup = lookupOf(this.dns);
    const { zone, servers, findings } = await findingsFor(lookup, name, txtValue(challenge.keyAuthorization));
    if (findings.length) return findings.join('; ');
    const shown = servers.map(showServer).join(', ');
    return (
      `every authoritative server of ${zone} (${shown}) answers the record at ${name}, so the CA resolves through ` +
      `a server that does not see it: step-ca's --resolver must point at one that answers for ${zone}`
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The server answered the update with a refusal (an rcode): it added nothing. */
function refused(err: unknown): boolean {
  const cause = err instanceof Error ? err.cause : undefined;
  if (!(cause instanceof DnsError)) return false;
  // BADSIG, BADKEY, BADTIME: the server could not verify the request, so it did not apply it.
  return cause.reason === 'rcode' || (cause.reason === 'tsig' && /^BAD/.test(cause.rcode ?? ''));
}

/** Withdraws one record and forgets it; a failure is logged and the note kept, for the next order. */
async function withdraw(
  publisher: Publisher,
  ctx: SolverContext,
  record: PublishedRecord,
): Promise<'withdrawn' | 'failed' | 'silent'> {
  try {
    await publisher.cleanup(record.name, record.value, record.zone);
  } catch (err) {
    ctx.log?.warn(
      {
        event: 'dns_record_cleanup_failed',
        certificate: record.certificate,
        record: record.name,
        err: describeError(err),
      },
      'a dns-01 record could not be withdrawn; the next order of this certificate tries again',
    );
    const cause = err instanceof Error ? err.cause : undefined;
    const silent = cause instanceof DnsError && (cause.reason === 'timeout' || cause.reason === 'unreachable');
    return silent ? 'silent' : 'failed';
  }
  noteWithdrawn(ctx.stateDir, record);
  return 'withdrawn';
}

/** What an earlier order of this certificate published and did not withdraw (it was killed): withdrawn now. */
async function sweep(publisher: Publisher, ctx: SolverContext): Promise<void> {
  const left = publishedRecords(ctx.stateDir).filter(
    (r) => r.certificate === ctx.certificate && r.via === publisher.via,
  );
  for (const record of left) {
    // A server that does not answer will not answer the next withdrawal either: the rest wait for the next order.
    const outcome = await withdraw(publisher, ctx, record);
    if (outcome === 'silent') return;
    if (outcome !== 'withdrawn') continue;
    ctx.log?.info(
      { event: 'dns_record_swept', certificate: record.certificate, record: record.name, since: record.at },
      'withdrew a dns-01 record an earlier pass left behind',
    );
  }
}

export const dnsSolver: SolverKind = {
  async open(settings, ctx) {
    const dns = dnsSettings(settings);
    const publisher = publisherOf(dns, ctx);
    await sweep(publisher, ctx);
    return new DnsSolver(dns, publisher, ctx);
  },
  answered: (settings, name) => {
    const dns = settings.dns;
    const how = dns?.command ? `challenge.dns.command` : 'an RFC 2136 update';
    return `${recordName(name)} TXT can be published through ${how}`;
  },
  diagnose: (settings, ctx) => diagnoseDns(dnsSettings(settings), ctx),
};
