import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emptyState, readState, writeState, type AgentState } from '../../../agent/store/state.js';
import { tempDir } from '../../helpers/agent.js';

let dir: string;
beforeEach(() => {
  dir = tempDir('state-');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('state.json', () => {
  it('a missing file reads as a fresh state', () => {
    expect(readState(dir, 'default')).toEqual({ consecutiveFailures: 0, backoffStep: 0, placeholder: false });
  });

  it('a damaged file reads as a fresh state, never as an error', () => {
    writeFileSync(join(dir, 'state.json'), '{"consecutiveFailures": 3,');
    expect(readState(dir, 'default')).toEqual(emptyState());
  });

  it('fields a file lacks take their defaults', () => {
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ lastSuccess: '2026-12-01T00:00:00.000Z' }));
    expect(readState(dir, 'default')).toEqual({ ...emptyState(), lastSuccess: '2026-12-01T00:00:00.000Z' });
  });

  it('writes 0600 and reads back what it wrote', () => {
    const state: AgentState = {
      ...emptyState(),
      consecutiveFailures: 2,
      backoffStep: 1,
      lastAttempt: { at: '2026-12-07T10:00:00.000Z', result: 'failed', error: 'CA down', errorKind: 'ca-unavailable' },
      reload: { target: 'nginx', at: '2026-12-07T09:00:00.000Z', ok: true, servedSerial: '0a' },
    };
    writeState(dir, 'default', state);
    expect(statSync(join(dir, 'state.json')).mode & 0o777).toBe(0o600);
    expect(readState(dir, 'default')).toEqual(state);
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toMatch(/\n$/);
  });

  it('replaces the file by rename: a reader holding the old one keeps it whole', () => {
    writeState(dir, 'default', { ...emptyState(), backoffStep: 1 });
    const before = statSync(join(dir, 'state.json')).ino;
    writeState(dir, 'default', { ...emptyState(), backoffStep: 2 });
    expect(statSync(join(dir, 'state.json')).ino).not.toBe(before);
    expect(readState(dir, 'default').backoffStep).toBe(2);
  });
});
