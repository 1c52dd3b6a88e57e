import { describe, expect, it } from 'vitest';
import type { Config } from '../../../agent/config/config.js';
import { ConfigError } from '../../../agent/lib/errors.js';
import { ownershipForReading, ownershipOf } from '../../../agent/store/ownership.js';
import { findUser, resolveId } from '../../../agent/lib/users.js';

const config = (owner: string, group: string) => ({ certificate: { owner, group } }) as unknown as Config;
const nobody = findUser('nobody');

describe('ownership of the certificate files', () => {
  it('root and root: nobody else reads', () => {
    expect(ownershipOf(config('root', 'root'))).toEqual({});
    expect(ownershipOf(config('0', '0'))).toEqual({});
  });

  it('a consumer group that is not root reads through that group', () => {
    expect(ownershipOf(config('root', '4242'))).toEqual({ group: 4242 });
  });

  it.runIf(nobody)(
    "an owner that is not root: its primary group reads, and its uid is the old owner's, to take back",
    () => {
      expect(ownershipOf(config('nobody', 'root'))).toEqual({ group: nobody!.gid, legacyUid: nobody!.uid });
      expect(ownershipOf(config(String(nobody!.uid), 'root'))).toEqual({ group: nobody!.gid, legacyUid: nobody!.uid });
    },
  );

  it('a configured group wins over the owner’s primary group', () => {
    expect(ownershipOf(config('4243', '4244'))).toEqual({ group: 4244, legacyUid: 4243 });
  });

  it('a uid without a passwd entry and no group is refused: it has no group to give', () => {
    const uid = '4245';
    expect(findUser(uid)).toBeUndefined();
    expect(() => ownershipOf(config(uid, 'root'))).toThrow(ConfigError);
    expect(() => ownershipOf(config(uid, 'root'))).toThrow(
      /certificate\.owner: user "4245" has no entry in \/etc\/passwd/,
    );
  });

  it('unknown names are config errors naming the field', () => {
    expect(() => resolveId('no-such-group-here', 'group')).toThrow();
    expect(() => ownershipOf(config('root', 'no-such-group-here'))).toThrow(/^config: certificate\.group: group/);
    expect(() => ownershipOf(config('no-such-user-here', 'root'))).toThrow(/^config: certificate\.owner: user/);
  });

  it('for reading (status, doctor), an unknown owner reads as private instead of failing', () => {
    expect(ownershipForReading(config('no-such-user-here', 'root'))).toEqual({});
    expect(ownershipForReading(config('root', '4242'))).toEqual({ group: 4242 });
  });
});
