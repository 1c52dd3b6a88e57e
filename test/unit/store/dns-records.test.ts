/**
 * The note of dns-01 records published and not yet withdrawn: what is noted
 * comes back as it was, withdrawing forgets exactly that record, the file is
 * private and gone once nothing is noted, a file that cannot be read as
 * records counts as none, and two certificates' records never mix.
 */
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  notePublished,
  noteWithdrawn,
  publishedRecords,
  type PublishedRecord,
} from '../../../agent/store/dns-records.js';
import { tempDir } from '../../helpers/agent.js';

let stateDir: string;
let file: string;
beforeEach(() => {
  stateDir = tempDir('cert-agent-dns-records-');
  file = join(stateDir, 'dns-records.json');
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

const record = (over: Partial<PublishedRecord> = {}): PublishedRecord => ({
  certificate: 'app',
  name: '_acme-challenge.app.example.test',
  value: 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0',
  via: 'rfc2136',
  zone: 'example.test',
  at: '2026-12-07T22:00:00.000Z',
  ...over,
});

describe('dns-01 record notes', () => {
  it('a noted record comes back whole; withdrawn, it is forgotten and the file removed', () => {
    expect(publishedRecords(stateDir)).toEqual([]);
    const r = record();
    notePublished(stateDir, r);
    expect(publishedRecords(stateDir)).toEqual([r]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    noteWithdrawn(stateDir, r);
    expect(publishedRecords(stateDir)).toEqual([]);
    expect(existsSync(file)).toBe(false);
  });

  it('a command record without a zone round-trips; withdrawing one of two keeps the other, still 0600', () => {
    const a = record({ via: 'command', zone: undefined });
    delete a.zone;
    const b = record({ value: 'other-value' });
    notePublished(stateDir, a);
    notePublished(stateDir, b);
    expect(publishedRecords(stateDir)).toEqual([a, b]);
    noteWithdrawn(stateDir, a);
    expect(publishedRecords(stateDir)).toEqual([b]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('the same record noted twice is one entry (the later note)', () => {
    notePublished(stateDir, record());
    const again = record({ at: '2026-12-07T22:05:00.000Z' });
    notePublished(stateDir, again);
    expect(publishedRecords(stateDir)).toEqual([again]);
    noteWithdrawn(stateDir, record());
    expect(existsSync(file)).toBe(false);
  });

  it('records of two certificates are kept apart: the same name and value under each, withdrawn one by one', () => {
    const app = record();
    const other = record({ certificate: 'grafana' });
    notePublished(stateDir, app);
    notePublished(stateDir, other);
    expect(publishedRecords(stateDir)).toHaveLength(2);
    noteWithdrawn(stateDir, app);
    expect(publishedRecords(stateDir)).toEqual([other]);
  });

  it('withdrawing a record never noted changes nothing (not even the file)', () => {
    notePublished(stateDir, record());
    const before = readFileSync(file, 'utf8');
    const mtime = statSync(file).mtimeMs;
    noteWithdrawn(stateDir, record({ value: 'never-noted' }));
    noteWithdrawn(stateDir, record({ via: 'command' }));
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(statSync(file).mtimeMs).toBe(mtime);
  });

  for (const [what, text] of [
    ['not JSON', '{"records": [ {"certificate": "app", '],
    ['JSON null', 'null'],
    ['records not a list', '{"records": {"certificate": "app"}}'],
    ['empty', ''],
  ] as const) {
    it(`a corrupt file (${what}) counts as none, and the next note rewrites it`, () => {
      writeFileSync(file, text, { mode: 0o600 });
      expect(publishedRecords(stateDir)).toEqual([]);
      noteWithdrawn(stateDir, record());
      expect(readFileSync(file, 'utf8')).toBe(text);
      notePublished(stateDir, record());
      expect(publishedRecords(stateDir)).toEqual([record()]);
    });
  }

  it('entries that are not records are passed over, the others kept', () => {
    const good = record();
    const bad = [{ ...good, via: 'smoke-signal' }, { ...good, value: 42 }, { ...good, zone: null }, 'a string', null];
    writeFileSync(file, JSON.stringify({ records: [...bad, good] }), { mode: 0o600 });
    expect(publishedRecords(stateDir)).toEqual([good]);
  });
});
