import { mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inspectPublishedNames, publishedProblems } from '../../../agent/store/published.js';
import { installedSet } from './fixture.js';

let base: string;
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('the published names', () => {
  it('after an install every name is a link through current to a file of the live set', async () => {
    const set = await installedSet();
    base = set.base;
    const names = inspectPublishedNames(set.dir);
    expect(names.map((n) => [n.name, n.state, n.detail])).toEqual(
      ['key.pem', 'cert.pem', 'chain.pem', 'fullchain.pem', 'ca.pem', 'combined.pem'].map((n) => [n, 'ok', null]),
    );
    expect(publishedProblems(set.dir)).toEqual([]);
  });

  it('tells missing, copied, elsewhere, not-a-link and dangling apart, in the table order', async () => {
    const set = await installedSet();
    base = set.base;
    const at = (name: string) => join(set.dir, name);
    unlinkSync(at('key.pem'));
    unlinkSync(at('cert.pem'));
    writeFileSync(at('cert.pem'), 'copy');
    unlinkSync(at('chain.pem'));
    symlinkSync('/etc/ssl/certs/x.pem', at('chain.pem'));
    unlinkSync(at('fullchain.pem'));
    mkdirSync(at('fullchain.pem'));
    unlinkSync(join(set.live.path, 'ca.pem'));
    const problems = publishedProblems(set.dir);
    expect(problems.map((p) => [p.name, p.state])).toEqual([
      ['key.pem', 'missing'],
      ['cert.pem', 'regular-file'],
      ['chain.pem', 'elsewhere'],
      ['fullchain.pem', 'not-a-link'],
      ['ca.pem', 'dangling'],
    ]);
    expect(problems.map((p) => p.detail)).toEqual([
      `${at('key.pem')} is missing`,
      `${at('cert.pem')} is a regular file (copied over the link?), not the link to current/cert.pem: consumers read that copy, not the live set`,
      `${at('chain.pem')} points to /etc/ssl/certs/x.pem, outside the agent's live set (want current/chain.pem)`,
      `${at('fullchain.pem')} is a directory, not the link to current/fullchain.pem`,
      `${at('ca.pem')} -> current/ca.pem is dangling: the live set has no ca.pem`,
    ]);
  });

  it('a current that does not name a set leaves every right link dangling', async () => {
    const set = await installedSet();
    base = set.base;
    unlinkSync(join(set.dir, 'current'));
    symlinkSync('.sets/..', join(set.dir, 'current'));
    expect(new Set(inspectPublishedNames(set.dir).map((n) => n.state))).toEqual(new Set(['dangling']));
  });
});
