import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findUser, groupIdsOf, nameOfId, resolveId } from '../../../agent/lib/users.js';

const etc = mkdtempSync(join(tmpdir(), 'users-'));
writeFileSync(
  join(etc, 'passwd'),
  [
    'root:x:0:0:root:/root:/bin/bash',
    'www-data:x:33:33::/var/www:/usr/sbin/nologin',
    'broken:x:abc:1::/:/bin/sh',
    '',
  ].join('\n'),
);
writeFileSync(
  join(etc, 'group'),
  ['root:x:0:', 'www-data:x:33:', 'ssl-cert:x:110:www-data,traefik', 'odd:x:zz:'].join('\n'),
);
afterAll(() => rmSync(etc, { recursive: true, force: true }));

describe('users', () => {
  it('finds a user by name, then by uid, and skips lines without numeric ids', () => {
    expect(findUser('www-data', etc)).toEqual({ name: 'www-data', uid: 33, gid: 33 });
    expect(findUser('33', etc)?.name).toBe('www-data');
    expect(findUser('broken', etc)).toBeUndefined();
    expect(findUser('nobody', etc)).toBeUndefined();
  });

  it('lists the primary group and every group naming the user as a member', () => {
    expect(groupIdsOf({ name: 'www-data', uid: 33, gid: 33 }, etc)).toEqual([33, 110]);
    expect(groupIdsOf({ name: 'root', uid: 0, gid: 0 }, etc)).toEqual([0]);
  });

  it('resolves names and numbers to ids; an unknown name is a StoreError naming the file', () => {
    expect(resolveId('ssl-cert', 'group', etc)).toBe(110);
    expect(resolveId('www-data', 'user', etc)).toBe(33);
    expect(resolveId('4242', 'group', etc)).toBe(4242);
    expect(() => resolveId('nope', 'group', etc)).toThrow(`group "nope" does not exist in ${join(etc, 'group')}`);
    expect(() => resolveId('nope', 'user', etc)).toThrow(expect.objectContaining({ kind: 'store' }));
  });

  it('names an id for a message, or prints the number', () => {
    expect(nameOfId(33, 'user', etc)).toBe('www-data');
    expect(nameOfId(110, 'group', etc)).toBe('ssl-cert');
    expect(nameOfId(999, 'group', etc)).toBe('999');
  });
});
