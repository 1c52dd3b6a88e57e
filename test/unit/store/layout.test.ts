import { describe, expect, it } from 'vitest';
import { PATHS, SET_FILES, publishedTarget, setFileMode, type OwnedPath } from '../../../agent/store/layout.js';

const shared = { group: 110 };
const entries: OwnedPath[] = Object.values(PATHS);

describe('the path table', () => {
  it('names each path once in its directory', () => {
    for (const where of ['state', 'certificate', 'set'] as const) {
      const names = entries.filter((p) => p.in === where).map((p) => p.name);
      expect(new Set(names).size).toBe(names.length);
    }
  });

  it('directories: the state directory 0700 always; the certificate directories 0750 with a consumer group, else 0700', () => {
    expect(PATHS.stateDir.mode(shared)).toBe(0o700);
    for (const p of [PATHS.certDir, PATHS.sets, PATHS.set]) {
      expect([p.kind, p.owner, p.mode({}), p.mode(shared)]).toEqual(['directory', 'consumers', 0o700, 0o750]);
    }
  });

  it('the secrets are the account key, key.pem and combined.pem; the keys of a set are group-readable only with a group', () => {
    expect(entries.filter((p) => p.secret).map((p) => p.name)).toEqual(['account.key', 'key.pem', 'combined.pem']);
    expect(PATHS.accountKey.mode(shared)).toBe(0o600);
    for (const name of ['key.pem', 'combined.pem']) {
      expect([setFileMode(name, {}), setFileMode(name, shared)]).toEqual([0o600, 0o640]);
    }
  });

  it('the public files of a set are 0644 whatever the ownership, and so is a name the table does not know', () => {
    for (const name of ['cert.pem', 'chain.pem', 'fullchain.pem', 'ca.pem', 'PLACEHOLDER', 'unknown']) {
      expect([setFileMode(name, {}), setFileMode(name, shared)]).toEqual([0o644, 0o644]);
    }
  });

  it('every published name is a file of the set, linked through current', () => {
    const inSet = entries.filter((p) => p.in === 'set' && p.kind === 'file').map((p) => p.name);
    expect(SET_FILES).toEqual(['key.pem', 'cert.pem', 'chain.pem', 'fullchain.pem', 'ca.pem', 'combined.pem']);
    for (const name of SET_FILES) {
      expect(inSet).toContain(name);
      expect(publishedTarget(name)).toBe(`current/${name}`);
    }
  });

  it('the state directory holds the agent-only files', () => {
    const state = entries.filter((p) => p.in === 'state' && p.kind === 'file');
    expect(state.map((p) => [p.name, p.mode({})])).toEqual([
      ['state.json', 0o600],
      ['trust.json', 0o644],
      ['lock', 0o600],
      ['account.key', 0o600],
      ['account.json', 0o600],
      ['daemon.pid', 0o644],
      ['dns-records.json', 0o600],
    ]);
    expect(state.every((p) => p.owner === 'agent')).toBe(true);
  });
});
