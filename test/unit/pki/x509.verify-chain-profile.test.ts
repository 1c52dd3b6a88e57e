/**
 * CA-profile rules verifyChain shares with `openssl verify -x509_strict
 * -purpose sslserver`: key identifier extensions marked critical, a CA
 * without a subject, a root whose authority key identifier names another
 * certificate than itself, EC keys with explicit curve parameters (which
 * Node reports as the named curve they equal), and a leaf whose Netscape
 * certificate type leaves out SSL servers. Each case is minted by openssl and
 * judged by both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INT, LEAF, ROOT, leafExt, mint, verdicts } from '../../helpers/chain-oracle.js';
import type { Made } from '../../harness/pki.js';

let dir: string;
let root: Made;
let int: Made;
const make = (cn: string, ext: string[], issuer?: Made, opts = {}) => mint(dir, cn, ext, issuer, opts);
const both = (ok: boolean) => ({ openssl: ok, agent: ok });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-profile-'));
  root = await make('Root', ROOT);
  int = await make('Intermediate', INT, root);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('verifyChain refuses the CA profiles openssl refuses', () => {
  it('a critical authority or subject key identifier, on an intermediate or the leaf', async () => {
    const cases = [
      ['authorityKeyIdentifier = critical, keyid:always', 'authority key identifier'],
      ['subjectKeyIdentifier = critical, hash', 'subject key identifier'],
    ] as const;
    for (const [line, words] of cases) {
      const key = line.split(' ')[0]!;
      const badInt = await make('Critical Int', [...INT.filter((l) => !l.startsWith(key)), line], root);
      const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), badInt);
      const v = await verdicts(dir, root, [badInt], leaf);
      expect({ line, ...v }).toMatchObject({ line, ...both(false) });
      expect(v.problem).toContain(`critical ${words}`);
      const badLeafExt = [...LEAF.filter((l) => !l.startsWith(key)), line, 'subjectAltName = DNS:a.example.test'];
      const badLeaf = await make('a.example.test', badLeafExt, int);
      expect({ line, ...(await verdicts(dir, root, [int], badLeaf)) }).toMatchObject({ line, ...both(false) });
    }
  });

  it('a CA without a critical basicConstraints or without keyUsage, and keyCertSign on a leaf', async () => {
    const cases: [string, string[], RegExp][] = [
      ['BC not critical', ['basicConstraints = CA:TRUE', ...INT.slice(1)], /basicConstraints is not marked critical/],
      ['no keyUsage', INT.filter((l) => !l.startsWith('keyUsage')), /without a keyUsage/],
    ];
    for (const [what, ext, why] of cases) {
      const asRoot = await make(
        `Root ${what}`,
        ext.filter((l) => !l.startsWith('authorityKey')),
      );
      const under = await make(`Under ${what}`, INT, asRoot);
      const leaf1 = await make('www.example.test', leafExt('DNS:www.example.test'), under);
      const asInt = await make(`Int ${what}`, ext, root);
      const leaf2 = await make('www.example.test', leafExt('DNS:www.example.test'), asInt);
      for (const [r, chain, leaf] of [
        [asRoot, under, leaf1],
        [root, asInt, leaf2],
      ] as const) {
        const v = await verdicts(dir, r, [chain], leaf);
        expect({ what, ...v }).toMatchObject({ what, ...both(false) });
        expect(v.problem).toMatch(why);
      }
    }
    const signing = LEAF.map((l) =>
      l.startsWith('keyUsage') ? 'keyUsage = critical, digitalSignature, keyCertSign' : l,
    );
    const leaf = await make('www.example.test', [...signing, 'subjectAltName = DNS:www.example.test'], int);
    const v = await verdicts(dir, root, [int], leaf);
    expect(v).toMatchObject(both(false));
    expect(v.problem).toMatch(/is not a CA .*keyCertSign/);
  });
});

describe('verifyChain refuses the names and flags openssl refuses', () => {
  it('an empty subjectAltName, an empty subject beside a non-critical one, a pathLen on a leaf', async () => {
    const noSan = LEAF;
    const cases: [string, string[], string | undefined, RegExp][] = [
      ['empty SAN', [...noSan, '2.5.29.17 = DER:3000'], undefined, /empty subjectAltName/],
      ['SAN not critical', [...noSan, 'subjectAltName = DNS:www.example.test'], '/', /not marked critical/],
      [
        'pathLen on a leaf',
        [...leafExt('DNS:www.example.test').slice(1), 'basicConstraints = critical, CA:FALSE, pathlen:0'],
        undefined,
        /pathLen/,
      ],
    ];
    for (const [what, ext, subject, why] of cases) {
      const leaf = await make('www.example.test', ext, int, subject ? { subject } : {});
      const v = await verdicts(dir, root, [int], leaf);
      expect({ what, ...v }).toMatchObject({ what, ...both(false) });
      expect(v.problem).toMatch(why);
    }
  });
});

describe('verifyChain refuses the CA subjects, key identifiers and keys openssl refuses', () => {
  it('a CA certificate with an empty subject', async () => {
    const nameless = await make('unused', [...INT, 'subjectAltName = critical, DNS:ca.example.test'], root, {
      subject: '/',
    });
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), nameless);
    const v = await verdicts(dir, root, [nameless], leaf);
    expect(v).toMatchObject(both(false));
    expect(v.problem).toMatch(/empty subject/);
  });

  it('a root whose authority key identifier names another key or serial, not one that names itself', async () => {
    const refused = [
      'authorityKeyIdentifier = DER:3003820101', // serial 1, the root's is not
      'authorityKeyIdentifier = DER:30068004deadbeef', // a key id that is not its own
    ];
    for (const line of refused) {
      const odd = await make('Odd Root', [...ROOT, line]);
      const under = await make('Under Odd Root', INT, odd);
      const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), under);
      const v = await verdicts(dir, odd, [under], leaf);
      expect({ line, ...v }).toMatchObject({ line, ...both(false) });
      expect(v.problem).toMatch(/authority key identifier/);
    }
    const selfNamed = await make('Self-named Root', [...ROOT, 'authorityKeyIdentifier = keyid, issuer:always']);
    const under = await make('Under Self-named Root', INT, selfNamed);
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), under);
    expect(await verdicts(dir, selfNamed, [under], leaf)).toEqual(both(true));
  });

  it('an EC key with explicit curve parameters, on the root, an intermediate or the leaf', async () => {
    const explicit = { keyOpts: ['ec_param_enc:explicit'] };
    const exRoot = await make('Explicit Root', ROOT, undefined, explicit);
    const underExRoot = await make('Under Explicit Root', INT, exRoot);
    const leaf1 = await make('www.example.test', leafExt('DNS:www.example.test'), underExRoot);
    const exInt = await make('Explicit Int', INT, root, explicit);
    const leaf2 = await make('www.example.test', leafExt('DNS:www.example.test'), exInt);
    const leaf3 = await make('www.example.test', leafExt('DNS:www.example.test'), int, explicit);
    for (const [r, chain, leaf] of [
      [exRoot, [underExRoot], leaf1],
      [root, [exInt], leaf2],
      [root, [int], leaf3],
    ] as const) {
      const v = await verdicts(dir, r, [...chain], leaf);
      expect(v).toMatchObject(both(false));
      expect(v.problem).toMatch(/explicit curve parameters/);
    }
  });
});

describe('verifyChain holds a leaf to its Netscape certificate type', () => {
  it('refuses nsCertType without SSL server, as openssl -purpose sslserver does (INVALID_PURPOSE)', async () => {
    const client = await make('c.example.test', leafExt('DNS:c.example.test', ['nsCertType = client']), int);
    const v = await verdicts(dir, root, [int], client);
    expect(v).toMatchObject(both(false));
    expect(v.why).toMatch(/unsuitable certificate purpose/);
    expect(v.problem).toMatch(/nsCertType/);
    for (const types of ['server', 'client, server']) {
      const ok = await make('s.example.test', leafExt('DNS:s.example.test', [`nsCertType = ${types}`]), int);
      expect({ types, ...(await verdicts(dir, root, [int], ok)) }).toEqual({ types, ...both(true) });
    }
  });
});
