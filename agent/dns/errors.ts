/**
 * The one error the DNS client throws to its callers: what the server did
 * (answered with an rcode, did not answer, answered garbage, failed the TSIG
 * check) and which server, so that the operator knows where to look.
 */
import { ChallengeError } from '../lib/errors.js';

export interface DnsServer {
  /** An IP literal, v4 or v6. */
  host: string;
  port: number;
}

export type DnsErrorReason = 'rcode' | 'timeout' | 'unreachable' | 'malformed' | 'tsig';

export function serverText(s: DnsServer): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

export class DnsError extends ChallengeError {
  /** "host:port" ("[v6]:port"). */
  readonly server: string;
  readonly reason: DnsErrorReason;
  /** The rcode's name (REFUSED, NOTAUTH…), or the TSIG error's (BADSIG, BADKEY, BADTIME). */
  readonly rcode?: string;
  constructor(
    server: DnsServer,
    reason: DnsErrorReason,
    message: string,
    options?: { rcode?: string; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.server = serverText(server);
    this.reason = reason;
    if (options?.rcode !== undefined) this.rcode = options.rcode;
  }
}
