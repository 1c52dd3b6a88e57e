/**
 * The 403 explanation of the http-01 self-check: which component of the
 * token's path the web server's user cannot enter or read, judged by owner,
 * group and other bits as the kernel does, with the mode, owner and fix.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainForbidden } from '../../../agent/challenge/self-check.js';

let base: string;
let dir: string;
let token: string;
const www = { name: 'www-data', uid: 33, gids: [33], source: "nginx's user directive" };

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'cert-agent-forbidden-'));
  chmodSync(base, 0o755);
  dir = join(base, '.well-known', 'acme-challenge');
  mkdirSync(dir, { recursive: true });
  chmodSync(join(base, '.well-known'), 0o755);
  token = join(dir, 'token');
  writeFileSync(token, 'x');
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('explainForbidden', () => {
  it('names the directory the user cannot enter, with mode, owner and the fix', () => {
    chmodSync(dir, 0o700);
    chmodSync(token, 0o644);
    expect(explainForbidden(token, www)).toBe(
      `www-data (nginx's user directive) cannot enter ${dir} (mode 0700, owner root:root): chmod o+x ${dir} (0755 is usual)`,
    );
  });

  it('names the file the user cannot read', () => {
    chmodSync(dir, 0o755);
    chmodSync(token, 0o600);
    expect(explainForbidden(token, www)).toMatch(
      new RegExp(`cannot read ${token} \\(mode 0600, owner root:root\\): chmod o\\+r`),
    );
  });

  it('uses the group bits when the user is in the file group', () => {
    chmodSync(token, 0o640);
    chownSync(token, 0, 33);
    expect(explainForbidden(token, www)).toMatch(/refuses .* although the modes along the path let www-data read it/);
    expect(explainForbidden(token, { ...www, gids: [34] })).toMatch(/cannot read/);
    chownSync(token, 0, 0);
  });

  it('without a known user, judges the other bits and says so', () => {
    chmodSync(dir, 0o750);
    chmodSync(token, 0o644);
    expect(explainForbidden(token, undefined)).toMatch(
      /^the web server's user \(not known here; checked as others\) cannot enter /,
    );
    chmodSync(dir, 0o755);
  });
});
