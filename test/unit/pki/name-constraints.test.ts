/**
 * A DNS name with one trailing dot (the absolute form, "x.example.com.")
 * names the same host as without it. openssl 3.0 compares the bytes, so the
 * dot lets a name slip past an excluded subtree; verifyChain holds it to the
 * constraints in both forms: never more lenient than openssl, and no way
 * around an excluded name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INT, ROOT, leafExt, mint, verdicts } from '../../helpers/chain-oracle.js';
import type { Made } from '../../harness/pki.js';

let dir: string;
let root: Made;
const make = (cn: string, ext: string[], issuer?: Made) => mint(dir, cn, ext, issuer);
const constrained = (nc: string) => make('Constrained', [...INT, `nameConstraints = critical, ${nc}`], root);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-nc-dot-'));
  root = await make('Root', ROOT);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a DNS name with a trailing dot', () => {
  it('is refused under an excluded subtree it would name without the dot (openssl 3.0 accepts it)', async () => {
    const nc = await constrained('excluded;DNS:bar.example.com');
    for (const san of ['DNS:*.example.com.', 'DNS:bar.example.com.', 'DNS:x.bar.example.com.']) {
      const leaf = await make('dotted', leafExt(san), nc);
      const v = await verdicts(dir, root, [nc], leaf);
      expect({ san, openssl: v.openssl, agent: v.agent }).toEqual({ san, openssl: true, agent: false });
      expect(v.problem).toMatch(/name constraints/);
    }
    // Without the dot the agent already refused the same names.
    const plain = await make('plain', leafExt('DNS:*.example.com'), nc);
    expect((await verdicts(dir, root, [nc], plain)).agent).toBe(false);
  });

  it('stays accepted where neither form is excluded, and refused where openssl refuses it', async () => {
    const excluded = await constrained('excluded;DNS:bar.example.com');
    const fine = await make('fine', leafExt('DNS:www.example.com.'), excluded);
    expect(await verdicts(dir, root, [excluded], fine)).toMatchObject({ openssl: true, agent: true });
    // openssl compares bytes: "a.example.com." is not within permitted example.com; neither is it here.
    const permitted = await constrained('permitted;DNS:example.com');
    const outside = await make('outside', leafExt('DNS:a.example.com.'), permitted);
    expect(await verdicts(dir, root, [permitted], outside)).toMatchObject({ openssl: false, agent: false });
  });
});
