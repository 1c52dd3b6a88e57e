/**
 * The dns-01 records the agent has published and not yet withdrawn. A record
 * is noted here, durably, before the update that adds it is sent, and
 * forgotten only after the update that removes it succeeded: a pass killed
 * in between (SIGKILL, a power cut) leaves the note, and the next order of
 * that certificate withdraws exactly those records, never any other.
 */
import { join } from 'node:path';
import { readIfExists, writeFileAtomic } from '../lib/fs.js';
import { unlinkMaybe } from '../lib/safefs.js';
import { PATHS } from './layout.js';

const FILE = PATHS.dnsRecords.name;
const MODE = PATHS.dnsRecords.mode({});

/** One record as it was published: enough to withdraw exactly it. */
export interface PublishedRecord {
  /** The certificate whose order published it. */
  certificate: string;
  /** The owner name, `_acme-challenge.NAME`. */
  name: string;
  /** The TXT value. */
  value: string;
  /** How it was published: an RFC 2136 update, or the operator's command. */
  via: 'rfc2136' | 'command';
  /** The zone it went into (RFC 2136). */
  zone?: string;
  /** When it was noted (ISO 8601). */
  at: string;
}

const same = (a: PublishedRecord, b: PublishedRecord) =>
  a.certificate === b.certificate && a.name === b.name && a.value === b.value && a.via === b.via;

/** Every record noted and not yet withdrawn; a file that cannot be parsed counts as none (it is rewritten at the next note). */
export function publishedRecords(stateDir: string): PublishedRecord[] {
  const text = readIfExists(join(stateDir, FILE));
  if (!text) return [];
  try {
    const parsed = JSON.parse(text) as { records?: unknown };
    return Array.isArray(parsed.records) ? parsed.records.filter(isRecord) : [];
  } catch {
    return [];
  }
}

function isRecord(r: unknown): r is PublishedRecord {
  const o = r as Record<string, unknown>;
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.certificate === 'string' &&
    typeof o.name === 'string' &&
    typeof o.value === 'string' &&
    (o.via === 'rfc2136' || o.via === 'command') &&
    (o.zone === undefined || typeof o.zone === 'string') &&
    typeof o.at === 'string'
  );
}

function write(stateDir: string, records: PublishedRecord[]): void {
  const path = join(stateDir, FILE);
  if (!records.length) {
    unlinkMaybe(path);
    return;
  }
  writeFileAtomic(path, `${JSON.stringify({ records }, null, 2)}\n`, MODE);
}

/** Before the update that publishes it: durable, so that a crash right after still knows. */
export function notePublished(stateDir: string, record: PublishedRecord): void {
  const records = publishedRecords(stateDir).filter((r) => !same(r, record));
  write(stateDir, [...records, record]);
}

/** After the update that withdrew it succeeded. */
export function noteWithdrawn(stateDir: string, record: PublishedRecord): void {
  const before = publishedRecords(stateDir);
  const after = before.filter((r) => !same(r, record));
  if (after.length !== before.length) write(stateDir, after);
}
