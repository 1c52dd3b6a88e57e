/** Who a web server runs as: a user by name or id with its groups, or the owner of a running process. */
import { describe, expect, it } from 'vitest';
import { runningServerUser, userNamed } from '../../../agent/reload/web-user.js';

describe('web server user', () => {
  it('finds a user by name and by numeric id, and nothing for an unknown one', () => {
    expect(userNamed('root', 'test')).toMatchObject({ name: 'root', uid: 0, source: 'test' });
    expect(userNamed('0', 'test')).toMatchObject({ name: 'root', uid: 0 });
    expect(userNamed('no-such-user-here', 'test')).toBeUndefined();
  });

  it('never names root as the user running a server (its workers are not root)', () => {
    expect(runningServerUser(/^node$/)?.uid).not.toBe(0);
  });
});
