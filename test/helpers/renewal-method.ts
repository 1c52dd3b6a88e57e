/**
 * What a renewal left behind that tells which way it went: the JSON log
 * events of a one-shot run (`renewal_started`, `renewal_fallback`,
 * `certificate_installed` and their `method`), `lastRenewal` in the state
 * file, and the public key of the live set, so the tests of renewal over
 * step-ca's API (faults and integration alike) read them the same way.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLog, type LogLine } from '../harness/json-log.js';

export interface Renewal {
  /** Every JSON log line of the run, in order. */
  events: LogLine[];
  of(event: string): LogLine[];
  /** `method` of the run's certificate_installed events. */
  installedBy: unknown[];
  /** `reason` of its renewal_fallback events. */
  fallbacks: string[];
}

/** The JSON lines of captured output (a one-shot run logs them to stderr). */
export function renewalOf(output: string): Renewal {
  const events = parseLog(output).filter((l) => l.event !== 'unparsed');
  const of = (event: string) => events.filter((e) => e.event === event);
  return {
    events,
    of,
    installedBy: of('certificate_installed').map((e) => e.method),
    fallbacks: of('renewal_fallback').map((e) => String(e.reason)),
  };
}

export interface LastRenewal {
  method: 'step' | 'acme';
  at: string;
  fallback?: string;
}

/** `lastRenewal` of a certificate's state file (state.json for `default`, state-NAME.json otherwise). */
export function lastRenewalOf(stateDir: string, name = 'default'): LastRenewal | undefined {
  const file = join(stateDir, name === 'default' ? 'state.json' : `state-${name}.json`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { lastRenewal?: LastRenewal }).lastRenewal;
}

/** The live set's public key (SPKI, base64), from key.pem: a rekey changes it, a renew would not. */
export function livePublicKey(certDir: string): string {
  const key = createPrivateKey(readFileSync(join(certDir, 'key.pem')));
  return (createPublicKey(key).export({ format: 'der', type: 'spki' }) as Buffer).toString('base64');
}
